package main

import (
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/auth"
)

// The README's Go code must compile, so every ```go block in it is a copy
// of code in a .go file that the tests build: TestReadmeCode finds each one
// there. Blank lines and comment lines do not count, indentation neither,
// and a "// ..." line in the README stands for any number of lines.

const root = "../.."

func TestReadmeCode(t *testing.T) {
	readme := readFile(t, filepath.Join(root, "README.md"))
	blocks := goBlocks(readme)
	if len(blocks) < 10 {
		t.Fatalf("README.md has %d go blocks, want the quick start, the recipes and the routers", len(blocks))
	}
	var sources [][]string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "artifacts") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			sources = append(sources, codeLines(readFile(t, path), false))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		want := codeLines(b.text, true)
		found := false
		for _, src := range sources {
			if containsLines(src, want) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("README.md:%d: this go block is in no .go file; copy it from the code that the tests build:\n%s", b.line, b.text)
		}
	}
}

// TestReadmeSettings checks that README documents every setting: each
// variable the examples read, and each field of auth.Config.
func TestReadmeSettings(t *testing.T) {
	readme := readFile(t, filepath.Join(root, "README.md"))
	// The settings are read in internal/demo, which every example shares,
	// and in the main example's own files.
	files, err := filepath.Glob(filepath.Join(root, "example", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "internal", "demo", "demo.go"))
	var vars [][]string
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			vars = append(vars, regexp.MustCompile(`getenv\("([A-Z_]+)"\)`).FindAllStringSubmatch(readFile(t, f), -1)...)
		}
	}
	if len(vars) < 6 {
		t.Fatalf("found %d getenv calls in %v, want the example's settings", len(vars), files)
	}
	for _, v := range vars {
		if !strings.Contains(readme, "`"+v[1]+"`") {
			t.Errorf("README.md does not document the example's setting %s", v[1])
		}
	}
	typ := reflect.TypeFor[auth.Config]()
	for i := range typ.NumField() {
		if f := typ.Field(i); f.IsExported() && !strings.Contains(readme, "`"+f.Name+"`") {
			t.Errorf("README.md does not document auth.Config.%s", f.Name)
		}
	}
}

type block struct {
	line int // of the opening fence
	text string
}

// goBlocks returns the README's fenced blocks marked go.
func goBlocks(md string) []block {
	var out []block
	var cur *strings.Builder
	start := 0
	sc := bufio.NewScanner(strings.NewReader(md))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```go":
			cur, start = &strings.Builder{}, n
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, block{start, cur.String()})
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return out
}

// codeLines returns the lines of code that count, trimmed. In README
// blocks, "// ..." lines stay, as wildcards.
func codeLines(src string, readme bool) []string {
	var out []string
	for _, l := range strings.Split(src, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "":
		case readme && l == "// ...":
			out = append(out, l)
		case strings.HasPrefix(l, "//"):
		default:
			out = append(out, l)
		}
	}
	return out
}

// containsLines reports whether want occurs in src as consecutive lines,
// a "// ..." in want matching any run of lines.
func containsLines(src, want []string) bool {
	for i := range src {
		if matchAt(src[i:], want) {
			return true
		}
	}
	return false
}

func matchAt(src, want []string) bool {
	switch {
	case len(want) == 0:
		return true
	case want[0] == "// ...":
		for i := 0; i <= len(src); i++ {
			if matchAt(src[i:], want[1:]) {
				return true
			}
		}
		return false
	case len(src) == 0 || src[0] != want[0]:
		return false
	}
	return matchAt(src[1:], want[1:])
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
