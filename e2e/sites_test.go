package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"html"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
)

// sites is an application and two attackers' origins, all over https,
// with the provider on http://localhost (a site of its own, and a secure
// context for the browser):
//
//	app   https://app.example.test:PORT   the application, with gatehouse
//	                                      at /auth/login, /auth/callback,
//	                                      /auth/logout
//	https://evil.example.test:PORT2      an attacker on a sibling subdomain:
//	                                      same site as the app (schemeful)
//	https://evil.test:PORT2              an attacker on another site
//
// The app's home page "/" shows <p id="who">hello SUB</p> or
// <p id="who">anonymous</p>, and a sign-out button (a same-origin POST to
// the logout path).
type sites struct {
	provider *authtest.Provider
	app      string // https://app.example.test:PORT, no trailing slash
	evilPort string

	mu    sync.Mutex
	pages map[string]evilPage // the attacker's pages, by path
}

// evilPage is a page the attacker serves: its HTML, and cookies set with
// it.
type evilPage struct {
	html    string
	cookies []*http.Cookie
}

// newSites starts the provider (users alice, bob and mallory; no one is
// approved automatically, so a browser without a provider session sees
// the user chooser), the app and the attacker's server.
func newSites(t *testing.T) *sites {
	t.Helper()
	cert := testCertificate(t)

	users := append(authtest.Users(), authtest.User{
		Subject: "mallory", Email: "mallory@example.com", EmailVerified: true, Name: "Mallory Example",
	})
	p := authtest.NewProvider(authtest.Config{Host: "localhost", Users: users})
	t.Cleanup(p.Close)
	s := &sites{provider: p, pages: map[string]evilPage{}}

	s.app = startSiteApp(t, p, nil, func(*auth.Middleware) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/" {
				http.NotFound(w, r)
				return
			}
			whoPage(w, r, `<form method="post" action="/auth/logout"><button id="logout">Sign out</button></form>`)
		})
	})

	evil := httptest.NewUnstartedServer(http.HandlerFunc(s.serveEvil))
	evil.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.evilPort = port(evil.Listener)
	evil.StartTLS()
	t.Cleanup(evil.Close)
	return s
}

// startSiteApp starts the application of https://app.example.test:PORT:
// the handler that routes returns, behind the middleware, which signs in
// at p (edit may change its Config). It returns the app's URL.
func startSiteApp(t *testing.T, p *authtest.Provider, edit func(*auth.Config), routes func(a *auth.Middleware) http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{testCertificate(t)}}
	app := "https://app.example.test:" + port(srv.Listener)
	p.AddRedirectURI(app + "/auth/callback")
	p.AddPostLogoutRedirectURI(app + "/")
	cfg := auth.Config{
		Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		RedirectURL:  app + "/auth/callback",
		CookieSecret: []byte("an e2e test secret of at least 32 bytes"),
		HTTPClient:   p.Client(),
		Logger:       slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := auth.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = a.Handler(routes(a))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return app
}

// whoPage writes the app's page: who is signed in ("anonymous" or "hello
// SUB") in <p id="who">, then extra HTML.
func whoPage(w http.ResponseWriter, r *http.Request, extra string) {
	who := "anonymous"
	if u := auth.User(r.Context()); u != nil {
		who = "hello " + u.Subject
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, `<!doctype html><title>app</title><p id="who">`+html.EscapeString(who)+`</p>`+extra)
}

// evil serves page at path on the attacker's server, and returns its URL
// on host, evil.example.test (same site as the app) or evil.test
// (another site).
func (s *sites) evil(host, path string, page evilPage) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pages[path] = page
	return "https://" + host + ":" + s.evilPort + path
}

func (s *sites) serveEvil(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	page, ok := s.pages[r.URL.Path]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	for _, c := range page.cookies {
		// http.SetCookie would drop a Domain it finds invalid; the
		// attacker's header goes out as written, for the browser to judge.
		w.Header().Add("Set-Cookie", c.String())
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, "<!doctype html><title>evil</title>"+page.html)
}

// client returns an HTTP client, such as an attacker's script, that
// reaches the test host names on loopback, trusts the test certificate
// and follows no redirects.
func (s *sites) client(t *testing.T) *http.Client {
	t.Helper()
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if !strings.HasSuffix(host, ".example.test") && host != "evil.test" {
				return nil, &net.AddrError{Err: "not a test host", Addr: addr}
			}
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
		TLSClientConfig: &tls.Config{RootCAs: testCertPool(t)},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// signIn signs the tab in at the app through the provider's user chooser
// as sub, and fails the test unless the app then greets sub.
func (s *sites) signIn(t *testing.T, tab context.Context, sub string) {
	t.Helper()
	button := chromedp.CSS(`button[value="` + sub + `"]`)
	if err := chromedp.Do(tab, chromedp.Navigate(s.app+"/auth/login"), chromedp.WaitVisible(button)); err != nil {
		page, _ := look(tab)
		t.Fatalf("sign in as %s: no user chooser at the provider: %v; the tab shows %s", sub, err, page)
	}
	if err := chromedp.Do(tab, chromedp.Click(button, chromedp.NodeVisible)); err != nil {
		t.Fatalf("sign in as %s: choose the user: %v", sub, err)
	}
	want := "hello " + sub
	if page, ok := await(tab, 5*time.Second, func(p shown) bool { return p.URL == s.app+"/" && p.Text != "" }); !ok || !strings.HasPrefix(page.Text, want) {
		t.Fatalf("sign in as %s: the tab shows %s, want the app's home page saying %q", sub, page, want)
	}
}

// who opens the app's home page in the tab and returns what #who says:
// "hello SUB" or "anonymous".
func (s *sites) who(t *testing.T, tab context.Context) string {
	t.Helper()
	err := chromedp.Do(tab, chromedp.Navigate(s.app+"/"))
	text := ""
	if err == nil {
		text, err = chromedp.Run(tab, chromedp.Text(chromedp.CSS("#who"), chromedp.NodeVisible))
	}
	if err != nil {
		page, _ := look(tab)
		t.Fatalf("open the app's home page: %v; the tab shows %s", err, page)
	}
	return strings.TrimSpace(text)
}

// port returns the port l listens on.
func port(l net.Listener) string {
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

// testCert is one self-signed certificate for the test host names,
// made once: the browser ignores certificate errors, the Go clients trust
// it.
var testCert struct {
	once sync.Once
	cert tls.Certificate
	pool *x509.CertPool
	err  error
}

func makeTestCert() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		testCert.err = err
		return
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gatehouse e2e"},
		DNSNames:              []string{"example.test", "*.example.test", "evil.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		testCert.err = err
		return
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		testCert.err = err
		return
	}
	testCert.cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	testCert.pool = x509.NewCertPool()
	testCert.pool.AddCert(leaf)
}

func testCertificate(t *testing.T) tls.Certificate {
	t.Helper()
	testCert.once.Do(makeTestCert)
	if testCert.err != nil {
		t.Fatalf("make the test certificate: %v", testCert.err)
	}
	return testCert.cert
}

func testCertPool(t *testing.T) *x509.CertPool {
	t.Helper()
	testCertificate(t)
	return testCert.pool
}

// testWriter sends the app's log to the test's log, shown when it fails
// or with -v.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("app: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
