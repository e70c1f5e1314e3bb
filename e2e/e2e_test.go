// Package e2e logs in to the example application in a real headless
// Chromium: the app on 127.0.0.1 and the embedded provider on localhost are
// two sites, as with a real provider, so the browser applies its SameSite
// and redirect rules for real. It lives in its own module so that chromedp
// never enters the library's go.mod.
//
// The test skips when no browser is installed, except under CI=true, where
// it fails instead. CHROMIUM names the browser binary to use.
package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// browserPaths are where the browser may be, best first. Debian's
// /usr/bin/chromium is a wrapper script that adds flags of its own, so the
// binary behind it comes first.
var browserPaths = []string{
	"/usr/lib/chromium/chromium",
	"/usr/bin/chromium",
	"/usr/bin/chromium-browser",
	"/usr/bin/google-chrome",
	"/usr/bin/google-chrome-stable",
	"/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
}

// findBrowser returns the browser binary, or skips the test (fails it under
// CI=true) when there is none.
func findBrowser(t *testing.T) string {
	t.Helper()
	paths := browserPaths
	if p := os.Getenv("CHROMIUM"); p != "" {
		paths = []string{p}
	}
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("no browser at %v: CI must run the browser test (.ci/run installs Debian's chromium)", paths)
	}
	t.Skipf("no browser at %v; install chromium (apt-get install chromium) to run this test", paths)
	return ""
}

func TestBrowserLoginLogout(t *testing.T) {
	findBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	app := startExample(t, ctx)

	bctx, cancelBrowser := newTab(t, 2*time.Minute)

	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			if shot, serr := chromedp.Run(bctx, chromedp.CaptureScreenshot()); serr == nil {
				saveArtifact(t, "failure.png", shot)
			}
			t.Fatalf("%s: %v\nexample log:\n%s", name, err, app.log())
		}
	}
	location := func() string {
		t.Helper()
		loc, err := chromedp.Run(bctx, chromedp.Location())
		if err != nil {
			t.Fatalf("read location: %v", err)
		}
		return loc
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
		if err != nil {
			t.Fatalf("read text of %s at %s: %v", sel, location(), err)
		}
		return strings.TrimSpace(s)
	}

	// Anonymous: the home page offers a login link.
	step("open the home page", chromedp.Navigate(app.url), chromedp.WaitVisible(chromedp.CSS("#login")))

	// Login goes to the provider's user chooser on localhost.
	step("click login", chromedp.Click(chromedp.CSS("#login"), chromedp.NodeVisible))
	step("wait for the user chooser", chromedp.WaitVisible(chromedp.CSS(`button[value="alice"]`)))
	if loc := location(); !strings.HasPrefix(loc, "http://localhost:") || !strings.Contains(loc, "/authorize") {
		t.Errorf("login led to %s, want the provider's authorize page on localhost", loc)
	}
	if shot, err := chromedp.Run(bctx, chromedp.CaptureScreenshot()); err == nil {
		saveArtifact(t, "chooser.png", shot)
	}

	// Choosing alice completes the flow back on the app, signed in.
	step("choose alice", chromedp.Click(chromedp.CSS(`button[value="alice"]`), chromedp.NodeVisible))
	step("wait for the greeting", chromedp.WaitVisible(chromedp.CSS("#greeting")))
	if got, want := text("#greeting"), "Hello, Alice Example"; got != want {
		t.Errorf("greeting after login = %q, want %q", got, want)
	}
	if loc := location(); loc != app.url {
		t.Errorf("after login the browser is at %s, want %s", loc, app.url)
	}
	shot, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	saveArtifact(t, "logged-in.png", shot)

	// The session cookie is what the middleware promises a browser.
	cookies, err := chromedp.Call(bctx, network.GetCookies, network.GetCookiesParams{URLs: []string{app.url}})
	if err != nil {
		t.Fatalf("read cookies: %v", err)
	}
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == "gatehouse" {
			session = c
		}
		if strings.Contains(c.Name, "_flow_") {
			t.Errorf("flow cookie %s still set after the callback", c.Name)
		}
	}
	if session == nil {
		t.Fatalf("no gatehouse session cookie for %s, have %d cookies", app.url, len(cookies.Cookies))
	}
	if !session.HTTPOnly || session.SameSite != network.CookieSameSiteLax || session.Path != "/" {
		t.Errorf("session cookie: HttpOnly %v, SameSite %q, Path %q; want HttpOnly, Lax, /", session.HTTPOnly, session.SameSite, session.Path)
	}

	// A script on the page reaches the API with the same cookie.
	me, err := chromedp.Run(bctx, chromedp.Evaluate[string](
		`fetch("/me", {headers: {Accept: "application/json"}}).then(r => r.status + " " + r.headers.get("Content-Type"))`,
		chromedp.EvalAwaitPromise))
	if err != nil || !strings.HasPrefix(me, "200 application/json") {
		t.Errorf("fetch /me from the page = %q (%v), want 200 application/json", me, err)
	}
	sub, err := chromedp.Run(bctx, chromedp.Evaluate[string](
		`fetch("/me", {headers: {Accept: "application/json"}}).then(r => r.json()).then(u => u.sub + " " + u.email)`,
		chromedp.EvalAwaitPromise))
	if err != nil || sub != "alice alice@example.com" {
		t.Errorf("fetch /me from the page: sub and email = %q (%v), want %q", sub, err, "alice alice@example.com")
	}

	// A reload keeps the session.
	step("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#greeting")))
	if got, want := text("#greeting"), "Hello, Alice Example"; got != want {
		t.Errorf("greeting after reload = %q, want %q", got, want)
	}

	// The logout button posts the form; the provider ends its session and
	// sends the browser back to the home page, signed out.
	step("log out", chromedp.Click(chromedp.CSS("#logout"), chromedp.NodeVisible), chromedp.WaitVisible(chromedp.CSS("#login")))
	if loc := location(); loc != app.url {
		t.Errorf("after logout the browser is at %s, want %s", loc, app.url)
	}
	step("reload after logout", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#login")))
	status, err := chromedp.Run(bctx, chromedp.Evaluate[int](
		`fetch("/me", {headers: {Accept: "application/json"}}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || status != 401 {
		t.Errorf("fetch /me after logout = %d (%v), want 401", status, err)
	}

	// Logging in again shows the chooser: the provider session ended too.
	step("log in again", chromedp.Click(chromedp.CSS("#login"), chromedp.NodeVisible), chromedp.WaitVisible(chromedp.CSS(`button[value="bob"]`)))

	cancelBrowser()
	app.stop(t)
}

// saveArtifact writes a file to e2e/artifacts: logged-in.png, the signed-in
// page; chooser.png, the provider's user chooser; failure.png, the page
// when a step failed.
func saveArtifact(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll("artifacts", 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("artifacts", name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(path)
	t.Logf("saved %s (%d bytes)", abs, len(data))
}

// example is the example application, running as a process as a newcomer
// runs it.
type example struct {
	cmd  *exec.Cmd
	url  string // the home page, such as http://127.0.0.1:PORT/
	done chan error

	mu   sync.Mutex
	logs strings.Builder
}

func (e *example) log() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.logs.String()
}

var urlAttr = regexp.MustCompile(`msg="Gatehouse example is running[^"]*" url=(\S+)`)

// startExample builds ./example from the repository root and runs it on
// 127.0.0.1 with a free port and the embedded provider, waiting until it
// logs the URL to open.
func startExample(t *testing.T, ctx context.Context) *example {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "example")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./example")
	build.Dir = ".."
	build.Env = append(os.Environ(), "GOWORK=") // the README's command: through go.work, whatever GOWORK test.sh set
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./example: %v\n%s", err, out)
	}

	e := &example{done: make(chan error, 1)}
	e.cmd = exec.Command(bin)
	e.cmd.Env = append(cleanEnv(),
		"ADDR=127.0.0.1:0",
		"AUTH_COOKIE_SECRET="+randomHex(32),
	)
	stderr, err := e.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	e.cmd.Stdout = io.Discard
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start example: %v", err)
	}
	t.Cleanup(func() {
		if e.cmd.ProcessState == nil {
			e.cmd.Process.Kill()
			<-e.done
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			e.mu.Lock()
			e.logs.WriteString(line + "\n")
			e.mu.Unlock()
			if m := urlAttr.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		e.done <- e.cmd.Wait()
	}()
	select {
	case e.url = <-found:
	case err := <-e.done:
		e.done <- err
		t.Fatalf("example exited before serving: %v\n%s", err, e.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("example did not log its URL within 30s:\n%s", e.log())
	}
	if !strings.HasPrefix(e.url, "http://127.0.0.1:") {
		t.Fatalf("example serves %s, want http://127.0.0.1:PORT/", e.url)
	}
	return e
}

// stop sends SIGINT, as Ctrl-C does, and checks the example shuts down
// cleanly.
func (e *example) stop(t *testing.T) {
	t.Helper()
	if err := e.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("signal example: %v", err)
	}
	select {
	case err := <-e.done:
		if err != nil {
			t.Errorf("example after SIGINT: %v, want exit status 0\n%s", err, e.log())
		}
	case <-time.After(15 * time.Second):
		t.Errorf("example still running 15s after SIGINT:\n%s", e.log())
	}
	if !strings.Contains(e.log(), "msg=stopped") {
		t.Errorf("example log lacks the clean shutdown:\n%s", e.log())
	}
}

// cleanEnv is this process's environment without the example's settings,
// so that the example starts the embedded provider.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "AUTH_"), name == "ADDR", name == "PUBLIC_URL":
			continue
		}
		env = append(env, kv)
	}
	return env
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
