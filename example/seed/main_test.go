package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

// TestSeed builds the seed app, runs it against authtest as Google, and
// walks it as a person would: the login link, sign-in as alice, the
// greeting by the name from userinfo, logout.
func TestSeed(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(src), "\n"); n > 40 {
		t.Errorf("main.go has %d lines, want at most 40", n)
	}
	bin := apptest.BuildCommand(t)
	p := authtest.NewProvider(authtest.Config{AutoApprove: "alice"})
	defer p.Close()
	addr := freeAddr(t)
	p.AddRedirectURI("http://" + addr + "/auth")
	p.AddPostLogoutRedirectURI("http://" + addr + "/")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "ADDR="+addr, "AUTH_ISSUER="+p.URL,
		"GOOGLE_CLIENT_ID="+p.ClientID, "GOOGLE_CLIENT_SECRET="+p.ClientSecret, "SECRET_KEY=a seed test secret of 32 bytes or more")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	go func() { // the seed's log, in the test's
		for s := bufio.NewScanner(stderr); s.Scan(); {
			t.Log(s.Text())
		}
	}()
	waitFor(t, addr)

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	home := "http://" + addr + "/"
	if body := getBody(t, c, home); !strings.Contains(body, `<a href="/login">Login with Google</a>`) {
		t.Fatalf("home page before login = %q, want the login link", body)
	}
	if body := getBody(t, c, "http://"+addr+"/login"); !strings.Contains(body, "Hello, Alice Example! <a href=\"/logout\">Logout</a>") {
		t.Fatalf("after login the browser shows %q, want the greeting", body)
	}
	if body := getBody(t, c, "http://"+addr+"/logout"); !strings.Contains(body, "Login with Google") {
		t.Errorf("after logout the browser shows %q, want the login link", body)
	}
}

func getBody(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin") // as a browser's click on the app's own link
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") { // sniffed: no header line needed
		t.Errorf("GET %s: Content-Type %q, want text/html", url, ct)
	}
	return string(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t *testing.T, addr string) {
	t.Helper()
	for range 100 {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the seed app did not listen on %s", addr)
}
