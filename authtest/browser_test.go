package authtest_test

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

func TestLogin(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		cfg  authtest.Config
		sub  string
		want string
	}{
		{"chooser mode", authtest.Config{}, "bob", "bob"},
		{"auto mode, other user", authtest.Config{AutoApprove: "alice"}, "bob", "bob"},
		{"auto mode, no session", authtest.Config{AutoApprove: "alice"}, "", "alice"},
		{"localhost", authtest.Config{Host: "localhost"}, "alice", "alice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.SigningAlg = "ES256"
			p := newProvider(t, tt.cfg)
			app := newApp(p)
			t.Cleanup(app.Close)
			browser := p.Login(t, app.URL+"/login", tt.sub)
			res, body := apptest.Get(t, browser, app.URL+"/me")
			if want := "hello " + tt.want + "@example.com"; res.StatusCode != http.StatusOK || body != want {
				t.Errorf("GET /me after Login: status %d, body %q; want 200, %q", res.StatusCode, body, want)
			}
		})
	}
}

// fakeTB records Fatalf instead of failing the test.
type fakeTB struct {
	testing.TB
	fatal string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatal runs f with a fakeTB and returns the Fatalf message, or "".
func fatal(t *testing.T, f func(tb testing.TB)) string {
	tb := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(tb)
	}()
	<-done
	return tb.fatal
}

func TestLoginFails(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{SigningAlg: "ES256"})
	app := newApp(p)
	t.Cleanup(app.Close)
	for _, tt := range []struct {
		name      string
		run       func(tb testing.TB)
		wantFatal string
	}{
		{"no login", func(tb testing.TB) { p.Login(tb, app.URL+"/me", "alice") }, "never reached the callback"},
		{"chooser", func(tb testing.TB) { p.Login(tb, app.URL+"/login", "") }, "user chooser"},
		{"unknown user", func(tb testing.TB) { p.Login(tb, app.URL+"/login", "zoe") }, `no user "zoe"`},
		{"token endpoint fails", func(tb testing.TB) {
			// x/oauth2 tries Basic auth, then client_secret_post.
			p.FailNext(authtest.Fault{TokenStatus: http.StatusInternalServerError})
			p.FailNext(authtest.Fault{TokenStatus: http.StatusInternalServerError})
			p.Login(tb, app.URL+"/login", "alice")
		}, "status 502"},
		{"Browser, unknown user", func(tb testing.TB) { p.Browser(tb, "zoe") }, `no user "zoe"`},
	} {
		if got := fatal(t, tt.run); !strings.Contains(got, tt.wantFatal) {
			t.Errorf("%s: Fatalf(%q), want it to contain %q", tt.name, got, tt.wantFatal)
		}
	}
}

func TestBrowser(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{SigningAlg: "ES256"})
	for _, tt := range []struct {
		sub        string
		wantStatus int
	}{
		{"alice", http.StatusFound}, // approved at once
		{"", http.StatusOK},         // the chooser page
	} {
		res, err := p.Browser(t, tt.sub).Get(p.URL + "/authorize?" + authParams(p).Encode())
		if err != nil {
			t.Fatalf("GET /authorize: %v", err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != tt.wantStatus {
			t.Errorf("Browser(%q): GET /authorize status %d, want %d (no redirects followed)", tt.sub, res.StatusCode, tt.wantStatus)
		}
	}
}
