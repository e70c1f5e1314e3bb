package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

// TestCommand builds the command, runs it on a free loopback port, logs
// in through it with package auth, rotates its key with SIGHUP, and
// stops it with SIGINT.
func TestCommand(t *testing.T) {
	bin := apptest.BuildCommand(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	users := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(users, []byte(`[{"sub": "carol", "email": "carol@example.com", "name": "Carol"}, {"sub": "dave"}]`), 0o600); err != nil {
		t.Fatal(err)
	}

	var app http.Handler = http.NotFoundHandler()
	appSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { app.ServeHTTP(w, r) }))
	defer appSrv.Close()

	cmd := exec.CommandContext(ctx, bin, "-addr", "127.0.0.1:0", "-client-id", "my-app", "-client-secret", "my-secret",
		"-redirect-uri", appSrv.URL+"/auth/callback", "-post-logout-redirect-uri", appSrv.URL+"/", "-users", users, "-alg", "ES256")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderrR, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() // if the test fails before SIGINT
	stderrLines := lines(stderrR)
	var stderrLog bytes.Buffer // what the command said so far, for failures
	waitStderr := func(want string) {
		t.Helper()
		for {
			select {
			case l, ok := <-stderrLines:
				if !ok {
					t.Fatalf("command stderr ended before %q:\n%s", want, &stderrLog)
				}
				stderrLog.WriteString(l + "\n")
				if strings.Contains(l, want) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %q on the command's stderr:\n%s", want, &stderrLog)
			}
		}
	}

	// The settings to paste, on stdout.
	settings := make(map[string]string)
	out := lines(stdout)
	for len(settings) < 3 {
		select {
		case l, ok := <-out:
			if !ok {
				waitStderr("never printed")
			}
			k, v, _ := strings.Cut(l, "=")
			settings[k] = v
		case <-ctx.Done():
			t.Fatalf("command printed no settings; stderr:\n%s", &stderrLog)
		}
	}
	issuer := settings["AUTH_ISSUER"]
	if !strings.HasPrefix(issuer, "http://127.0.0.1:") || settings["AUTH_CLIENT_ID"] != "my-app" || settings["AUTH_CLIENT_SECRET"] != "my-secret" {
		t.Fatalf("command printed %v, want AUTH_ISSUER http://127.0.0.1:PORT, AUTH_CLIENT_ID my-app, AUTH_CLIENT_SECRET my-secret", settings)
	}
	waitStderr("SIGINT stops")

	a, err := auth.New(ctx, auth.Config{
		Issuer:       issuer,
		ClientID:     settings["AUTH_CLIENT_ID"],
		ClientSecret: settings["AUTH_CLIENT_SECRET"],
		RedirectURL:  appSrv.URL + "/auth/callback",
		CookieSecret: []byte("0123456789abcdef0123456789abcdef"),
	})
	if err != nil {
		t.Fatalf("auth.New against the command: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /me", a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, auth.User(r.Context()).Subject)
	})))
	app = a.Handler(mux)

	login(t, appSrv.URL, issuer, "carol")

	// SIGHUP: a new signing key, which the application finds by its kid.
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitStderr("rotated the signing key")
	if n := jwksSize(t, issuer); n != 2+1 { // the old and new ES256 keys, and the RS256 one
		t.Errorf("JWKS after SIGHUP: %d keys, want 3", n)
	}
	login(t, appSrv.URL, issuer, "dave")

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitStderr("stopped")
	if err := cmd.Wait(); err != nil || cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("command after SIGINT: %v, exit code %d; want 0", err, cmd.ProcessState.ExitCode())
	}
}

// lines sends the lines read from r until it ends.
func lines(r io.Reader) <-chan string {
	ch := make(chan string, 100)
	go func() {
		defer close(ch)
		s := bufio.NewScanner(r)
		for s.Scan() {
			ch <- s.Text()
		}
	}()
	return ch
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)

// login signs sub in at the application through the provider's user
// chooser, with a new browser that follows redirects, and checks that
// the application then knows the user.
func login(t *testing.T, appURL, issuer, sub string) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	res, body := apptest.Get(t, browser, appURL+"/me", "Accept", "text/html")
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/authorize" || !strings.Contains(body, `value="`+sub+`"`) {
		t.Fatalf("GET /me: ended at %s with %d, want the provider's chooser with %s; body %.300q", res.Request.URL, res.StatusCode, sub, body)
	}
	form := url.Values{"sub": {sub}}
	for _, m := range hiddenInput.FindAllStringSubmatch(body, -1) {
		form.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	res, body = apptest.PostForm(t, browser, issuer+"/authorize", form)
	if res.StatusCode != http.StatusOK || res.Request.URL.String() != appURL+"/me" || body != sub {
		t.Fatalf("choosing %s: ended at %s with %d %.300q, want %s/me saying %s", sub, res.Request.URL, res.StatusCode, body, appURL, sub)
	}
}

func jwksSize(t *testing.T, issuer string) int {
	t.Helper()
	_, body := apptest.Get(t, http.DefaultClient, issuer+"/jwks")
	var set struct{ Keys []json.RawMessage }
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatalf("GET /jwks: %v", err)
	}
	return len(set.Keys)
}

func TestFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	users := write("users.json", `[{"sub": "carol", "email": "carol@example.com", "email_verified": true, "groups": ["g"], "extra": {"tenant": "t1"}}]`)
	typo := write("typo.json", `[{"subject": "carol"}]`)
	for _, tt := range []struct {
		name    string
		args    []string
		check   func(cfg authtest.Config) bool
		wantErr string // "" for success
	}{
		{"defaults", nil, func(c authtest.Config) bool {
			return c.Addr == "127.0.0.1:9999" && c.Host == "127.0.0.1" && c.ClientID == "test-client" && len(c.Users) == 2 &&
				fmt.Sprint(c.RedirectURIs) == "[http://127.0.0.1:8080/auth/callback]" && fmt.Sprint(c.PostLogoutRedirectURIs) == "[http://127.0.0.1:8080/]"
		}, ""},
		{"localhost", []string{"-addr", "localhost:0"}, func(c authtest.Config) bool { return c.Host == "localhost" }, ""},
		{"IPv6 loopback", []string{"-addr", "[::1]:0"}, func(c authtest.Config) bool { return c.Host == "::1" }, ""},
		{"all interfaces", []string{"-addr", ":9999"}, nil, "-insecure-non-loopback"},
		{"unspecified", []string{"-addr", "0.0.0.0:9999"}, nil, "not a loopback address"},
		{"public", []string{"-addr", "192.0.2.1:9999"}, nil, "not a loopback address"},
		{"allowed", []string{"-addr", "0.0.0.0:9999", "-insecure-non-loopback"}, func(c authtest.Config) bool { return c.Host == "127.0.0.1" }, ""},
		{"host", []string{"-addr", "0.0.0.0:9999", "-insecure-non-loopback", "-host", "auth.test"}, func(c authtest.Config) bool { return c.Host == "auth.test" }, ""},
		{"redirect URIs", []string{"-redirect-uri", "http://a/cb", "-redirect-uri", "http://b/cb"}, func(c authtest.Config) bool {
			return fmt.Sprint(c.RedirectURIs) == "[http://a/cb http://b/cb]"
		}, ""},
		{"prefix only", []string{"-insecure-redirect-prefix", "http://127.0.0.1:"}, func(c authtest.Config) bool {
			return len(c.RedirectURIs) == 0 && fmt.Sprint(c.InsecureRedirectURIPrefixes) == "[http://127.0.0.1:]"
		}, ""},
		{"lifetimes and rotation", []string{"-access-ttl", "5m", "-id-ttl", "10m", "-refresh-ttl", "1h", "-rotation", "grace", "-refresh-grace", "30s"}, func(c authtest.Config) bool {
			return c.AccessTokenTTL == 5*time.Minute && c.IDTokenTTL == 10*time.Minute && c.RefreshTokenTTL == time.Hour &&
				c.Rotation == authtest.RotateWithGrace && c.RefreshGrace == 30*time.Second
		}, ""},
		{"no rotation", []string{"-rotation", "none"}, func(c authtest.Config) bool { return c.Rotation == authtest.NoRotation }, ""},
		{"bad rotation", []string{"-rotation", "sometimes"}, nil, "-rotation"},
		{"negative lifetime", []string{"-access-ttl", "-1m"}, nil, "-access-ttl"},
		{"users", []string{"-users", users}, func(c authtest.Config) bool {
			u := c.Users[0]
			return len(c.Users) == 1 && u.Subject == "carol" && u.EmailVerified && u.Groups[0] == "g" && u.Extra["tenant"] == "t1"
		}, ""},
		{"users typo", []string{"-users", typo}, nil, "unknown field"},
		{"users missing", []string{"-users", filepath.Join(dir, "nope.json")}, nil, "-users"},
		{"arguments", []string{"extra"}, nil, "unexpected arguments"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFlags(tt.args, io.Discard)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("parseFlags(%q): %v", tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("parseFlags(%q): error %v, want one with %q", tt.args, err, tt.wantErr)
			case tt.check != nil && !tt.check(cfg):
				t.Errorf("parseFlags(%q) = %+v, not as expected", tt.args, cfg)
			}
		})
	}
}

// TestRunFails: a bad flag or Config stops the command with a message.
func TestRunFails(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{"-addr", "0.0.0.0:0"}, 2, "-insecure-non-loopback"},
		{[]string{"-addr", "127.0.0.1:0", "-auto-approve", "zoe"}, 1, "AutoApprove"},
		{[]string{"-nope"}, 2, "flag provided but not defined"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tt.args, nil, &stdout, &stderr); code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) || stdout.Len() != 0 {
			t.Errorf("run(%q): exit %d, stdout %q, stderr %q; want %d and %q", tt.args, code, stdout.String(), stderr.String(), tt.wantCode, tt.wantErr)
		}
	}
}
