#!/usr/bin/env bash
# test.sh runs every check, in every module of the repository: the library
# (root), the examples (example/, and example/chi, gin and echo, each a
# module of its own), redisstore/ and the browser test (e2e/). It is what
# CI runs.
#
#	bash test.sh
#
# Steps: gofmt, go.work, go mod tidy (nested modules), go vet, staticcheck,
# then go test -race in each module, the browser test last. The browser test
# needs Chromium (apt-get install chromium) and the redisstore tests a Redis
# server (REDIS_URL, set by .ci/with-redis); without them they skip, and
# go test still says ok, so test.sh ends with one SKIPPED line for each
# such suite. With CI=true they fail instead. Extra arguments go to every
# go test, such as -count=1 or -run=TestApp.
set -uo pipefail
cd "$(dirname "$0")"

staticcheck_version=v0.8.2
# Every module, the root first and e2e last.
modules=(. $(find . -name go.mod -not -path './.git/*' -not -path ./go.mod -not -path ./e2e/go.mod -exec dirname {} \; | sort) ./e2e)

# go.work at the root puts every module in one workspace, so that
# `go run ./example` works from the root. In a workspace each module builds
# against the others' source and against the highest version of each
# dependency that any of them requires, whatever its own go.mod says: a
# go.mod missing a requirement, or a module that only builds with another
# module's newer dependency, would pass here and fail for its users. So
# every step below runs each module alone, against its own go.mod and
# go.sum (and its replace directives to the modules beside it), with
# GOWORK=off.
export GOWORK=off
failed=()
fail() { failed+=("$1"); echo "FAIL: $1" >&2; }

# Suites that skip when the machine lacks what they need, checked the way
# their tests check (redisstore/helpers_test.go, e2e/e2e_test.go). Under
# CI=true the tests fail instead, and say why.
skipped=()
have_browser() {
	if [ -n "${CHROMIUM:-}" ]; then
		[ -f "$CHROMIUM" ]
		return
	fi
	local p
	for p in /usr/lib/chromium/chromium /usr/bin/chromium /usr/bin/chromium-browser \
		/usr/bin/google-chrome /usr/bin/google-chrome-stable \
		"/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"; do
		[ -f "$p" ] && return 0
	done
	return 1
}
if [ "${CI:-}" != true ]; then
	if [ -z "${REDIS_URL:-}" ]; then
		skipped+=("redisstore tests, and the example's with AUTH_SESSION_STORE=redis, need a Redis server: run .ci/with-redis bash test.sh")
	elif ! command -v redis-server >/dev/null; then
		skipped+=("redisstore tests that start their own Redis need redis-server on PATH: apt-get install redis-server")
	fi
	if ! have_browser; then
		skipped+=("browser tests (e2e) need Chromium: apt-get install chromium (or set CHROMIUM to a Chrome binary)")
	fi
fi

echo "== gofmt"
unformatted=$(gofmt -l $(find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "$unformatted"
	fail "gofmt: run gofmt -w on the files above"
fi

echo "== go.work"
# It lists every module, and the README's command builds from the root.
listed=$(GOWORK= go work edit -json | sed -n 's/.*"DiskPath": "\(.*\)".*/\1/p' | sed 's#^\./##; s#^$#.#' | sort)
want=$(printf '%s\n' "${modules[@]}" | sed 's#^\./##' | sort)
if [ "$listed" != "$want" ]; then
	printf 'go.work lists:\n%s\nthe modules are:\n%s\n' "$listed" "$want"
	fail "go.work: list every module in it (go work use -r .)"
fi
GOWORK= go build -o /dev/null ./example || fail "go.work: go build ./example from the root"

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

# Last, where it is seen: go test said ok for these suites, which skipped
# their tests.
for s in ${skipped[@]+"${skipped[@]}"}; do
	echo "SKIPPED: $s"
done

if [ ${#failed[@]} -gt 0 ]; then
	printf '\n%d step(s) failed:\n' ${#failed[@]} >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
