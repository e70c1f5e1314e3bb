#!/usr/bin/env bash
# test.sh runs every check, in every module of the repository: the library
# (root), the examples (example/ is in the root module; examples/chi, gin and
# echo have their own go.mod) and the browser test (e2e/). It is what CI runs.
#
#	bash test.sh
#
# Steps: gofmt, go mod tidy (nested modules), go vet, staticcheck, then
# go test -race in each module, the browser test last. The browser test
# needs Chromium (apt-get install chromium); without it, it skips, except
# with CI=true, where it fails. Extra arguments go to every go test, such as
# -count=1 or -run=TestApp.
set -uo pipefail
cd "$(dirname "$0")"

staticcheck_version=v0.8.2
# Every module, the root first and e2e last.
modules=(. $(find . -name go.mod -not -path './.git/*' -not -path ./go.mod -not -path ./e2e/go.mod -exec dirname {} \; | sort) ./e2e)
failed=()
fail() { failed+=("$1"); echo "FAIL: $1" >&2; }

echo "== gofmt"
unformatted=$(gofmt -l $(find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "$unformatted"
	fail "gofmt: run gofmt -w on the files above"
fi

echo "== go mod tidy"
for m in "${modules[@]}"; do
	[ "$m" = . ] && continue # the library's go.mod is kept by its authors
	if ! (cd "$m" && go mod tidy -diff >/dev/null); then
		fail "$m: go.mod or go.sum is not tidy: run (cd $m && go mod tidy)"
	fi
done

echo "== go vet"
for m in "${modules[@]}"; do
	(cd "$m" && go vet ./...) || fail "$m: go vet"
done

echo "== staticcheck $staticcheck_version"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
if GOBIN="$bin" go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"; then
	for m in "${modules[@]}"; do
		(cd "$m" && "$bin/staticcheck" ./...) || fail "$m: staticcheck"
	done
else
	fail "install staticcheck"
fi

echo "== go test -race"
for m in "${modules[@]}"; do
	(cd "$m" && go test -race "$@" ./...) || fail "$m: go test"
done

if [ ${#failed[@]} -gt 0 ]; then
	printf '\n%d step(s) failed:\n' ${#failed[@]} >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
