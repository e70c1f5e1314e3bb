package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// One Chromium serves every test of the package: starting it costs more
// than most tests. Each test gets tabs of its own in browser contexts of
// their own, which share no cookies, cache or storage, like separate
// incognito windows.
var shared struct {
	once    sync.Once
	browser context.Context // the browser's first tab; parent of every tab
	stop    func()
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.stop != nil {
		shared.stop()
	}
	os.Exit(code)
}

// hostRules sends the test's host names to loopback: app.example.test and
// evil.example.test are two origins of one site, evil.test is another
// site, and so is other.test (idp.other.test, a provider). Their servers listen on 127.0.0.1 (with certificates that
// --ignore-certificate-errors accepts). localhost and 127.0.0.1 resolve as
// always.
const hostRules = "MAP *.example.test 127.0.0.1, MAP evil.test 127.0.0.1, MAP *.other.test 127.0.0.1"

// browserOptions are Chromium's flags: headless, without the sandbox
// (which needs privileges a container may lack), without any network
// traffic of its own, and accepting the test servers' certificates.
func browserOptions(path string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors", true), // httptest and test certificates
		chromedp.Flag("host-resolver-rules", hostRules),
		chromedp.Flag("no-proxy-server", true), // the test host names must not reach a proxy
		chromedp.NoFirstRun,
		chromedp.WindowSize(900, 600),
	}
}

// sharedBrowser returns the shared browser, starting it on first use. It
// skips the test when there is no browser (fails it under CI=true).
func sharedBrowser(t *testing.T) context.Context {
	t.Helper()
	path := findBrowser(t)
	shared.once.Do(func() {
		// The browser outlives the test that starts it: no t.Logf, no
		// timeout (chromedp stops the browser with the context of its
		// first Run).
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), browserOptions(path)...)
		browser, cancelBrowser := chromedp.NewContext(allocCtx)
		shared.stop = func() { cancelBrowser(); cancelAlloc() }
		started := make(chan error, 1)
		go func() { started <- chromedp.Do(browser) }()
		select {
		case shared.err = <-started:
		case <-time.After(30 * time.Second):
			shared.err = fmt.Errorf("%s did not start within 30s", path)
		}
		if shared.err == nil {
			shared.browser = browser
		}
	})
	if shared.err != nil {
		t.Fatalf("start the browser: %v", shared.err)
	}
	return shared.browser
}

// newTab opens a tab in the shared browser, in a browser context of its
// own (no cookies yet), closed by closeTab or when the test ends. Every
// action on it fails once timeout has passed.
func newTab(t *testing.T, timeout time.Duration) (tab context.Context, closeTab func()) {
	t.Helper()
	tab, closeTab = chromedp.NewContext(sharedBrowser(t), chromedp.WithNewBrowserContext())
	t.Cleanup(closeTab)
	// The first Run opens the tab: it runs without the timeout, which
	// would otherwise bound the tab's life.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, timeout)
	t.Cleanup(cancel)
	return ctx, closeTab
}

// shown is a page the tab has loaded: its URL and the text of its body.
type shown struct{ URL, Text string }

func (s shown) String() string {
	if s.URL == "" {
		return "nothing loaded"
	}
	return fmt.Sprintf("%s showing %q", withoutQuery(s.URL), s.Text)
}

// look returns the page in the tab once it has loaded, or false while it
// is loading or navigating.
func look(tab context.Context) (shown, bool) {
	ctx, cancel := context.WithTimeout(tab, time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`document.readyState === "complete" && document.body ? [location.href, document.body.innerText] : null`))
	if err != nil || len(v) != 2 {
		return shown{}, false
	}
	return shown{URL: v[0], Text: strings.TrimSpace(v[1])}, true
}

// await waits up to timeout for the tab to show a loaded page for which
// ok holds, and returns it; when none comes, it returns the last page it
// saw and false. It does not depend on how the tab got there: a click, a
// script, a form, a chain of redirects.
func await(tab context.Context, timeout time.Duration, ok func(shown) bool) (shown, bool) {
	deadline := time.Now().Add(timeout)
	var last shown
	for {
		if s, loaded := look(tab); loaded {
			last = s
			if ok(s) {
				return s, true
			}
		}
		if time.Now().After(deadline) {
			return last, false
		}
		select {
		case <-tab.Done():
			return last, false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// withoutQuery is u without its query, which may hold a code or state
// that has no place in a log.
func withoutQuery(u string) string {
	before, _, _ := strings.Cut(u, "?")
	return before
}
