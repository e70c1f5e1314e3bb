package redisstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/testhooks"
	"github.com/gatehouse/auth/redisstore"
	"github.com/redis/go-redis/v9"
)

// need skips the test when something it needs from the machine is
// missing, or fails it under CI (CI=true), where everything must be there:
// .ci/with-redis installs and starts Redis.
func need(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing: CI runs these tests through .ci/with-redis", what)
	}
	t.Skipf("%s is missing: run the tests through .ci/with-redis to test against Redis", what)
}

// topology is a Redis setup the tests run against, named by an
// environment variable that .ci/with-redis sets: a URL in the form that
// go-redis v9 parses for that kind of client.
type topology struct {
	name string // standalone, sentinel or cluster
	env  string // REDIS_URL, REDIS_SENTINEL_URL or REDIS_CLUSTER_URL
}

var topologies = []topology{
	{"standalone", "REDIS_URL"},
	{"sentinel", "REDIS_SENTINEL_URL"},
	{"cluster", "REDIS_CLUSTER_URL"},
}

// onEachTopology runs f as a subtest on each topology. One whose
// variable is unset is skipped, or fails under CI.
func onEachTopology(t *testing.T, f func(t *testing.T, tp topology)) {
	t.Helper()
	for _, tp := range topologies {
		t.Run(tp.name, func(t *testing.T) { f(t, tp) })
	}
}

// client connects to the topology, closed by t.Cleanup.
func (tp topology) client(t testing.TB) redis.UniversalClient {
	t.Helper()
	u := os.Getenv(tp.env)
	if u == "" {
		need(t, tp.env)
	}
	return connect(t, tp.name, u, nil)
}

// connect returns a client of the kind (standalone, sentinel, cluster)
// for the URL, with edit applied to its options, closed by t.Cleanup.
func connect(t testing.TB, kind, rawURL string, edit func(*redis.UniversalOptions)) redis.UniversalClient {
	t.Helper()
	var u redis.UniversalOptions
	switch kind {
	case "standalone":
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			t.Fatalf("redis.ParseURL(%q): %v", rawURL, err)
		}
		u = redis.UniversalOptions{Addrs: []string{o.Addr}, DB: o.DB}
	case "sentinel":
		o, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			t.Fatalf("redis.ParseFailoverURL(%q): %v", rawURL, err)
		}
		u = redis.UniversalOptions{Addrs: o.SentinelAddrs, MasterName: o.MasterName, DB: o.DB}
	case "cluster":
		o, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			t.Fatalf("redis.ParseClusterURL(%q): %v", rawURL, err)
		}
		u = redis.UniversalOptions{Addrs: o.Addrs, IsClusterMode: true}
	default:
		t.Fatalf("unknown topology %q", kind)
	}
	if edit != nil {
		edit(&u)
	}
	c := redis.NewUniversalClient(&u)
	t.Cleanup(func() { c.Close() })
	return c
}

// newStore returns a Store on the topology with a key prefix of its own,
// so that tests running at once do not meet; its keys are deleted at the
// end.
func newStore(t testing.TB, tp topology) (*redisstore.Store, redis.UniversalClient, string) {
	t.Helper()
	c := tp.client(t)
	prefix := "test:" + rand.Text()[:10] + ":"
	t.Cleanup(func() { deleteKeys(t, c, prefix) })
	return redisstore.New(c, redisstore.Options{Prefix: prefix}), c, prefix
}

// keys returns the keys under prefix, on every master of a Cluster.
func keys(t testing.TB, c redis.UniversalClient, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var out []string
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			out = append(out, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return scan(ctx, n) })
	} else {
		err = scan(ctx, c)
	}
	if err != nil {
		t.Fatalf("SCAN %s*: %v", prefix, err)
	}
	return out
}

// deleteKeys deletes the keys under prefix, one DEL each: on a Cluster
// they are in many slots.
func deleteKeys(t testing.TB, c redis.UniversalClient, prefix string) {
	t.Helper()
	ks := keys(t, c, prefix)
	if len(ks) == 0 {
		return
	}
	ctx := context.Background()
	if _, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range ks {
			p.Del(ctx, k)
		}
		return nil
	}); err != nil {
		t.Errorf("delete keys %s*: %v", prefix, err)
	}
}

// testApp is an application wrapped by the middleware with sessions in a
// Store, served on loopback next to an authtest provider.
type testApp struct {
	*httptest.Server
	m    *auth.Middleware
	p    *authtest.Provider
	logs *syncBuffer
}

var testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// newApp starts an app for the provider p with sessions in store; edit
// may change the config before New. Several apps for one provider and one
// store are instances of one application: same secret, same sessions.
func newApp(t testing.TB, p *authtest.Provider, store auth.Store, edit func(*auth.Config)) *testApp {
	t.Helper()
	app := &testApp{p: p, logs: &syncBuffer{}}
	var h http.Handler = http.NotFoundHandler()
	var mu sync.RWMutex
	app.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.RLock()
		hh := h
		mu.RUnlock()
		hh.ServeHTTP(w, r)
	}))
	t.Cleanup(app.Close)
	p.AddRedirectURI(app.URL + "/auth/callback")
	p.AddPostLogoutRedirectURI(app.URL + "/")
	cfg := auth.Config{
		Issuer:       p.URL,
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		RedirectURL:  app.URL + "/auth/callback",
		CookieSecret: testSecret,
		Store:        store,
		Logger:       slog.New(slog.NewTextHandler(app.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	m, err := auth.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	testhooks.SetNow(m, p.Now) // one clock for provider and middleware
	app.m = m
	mu.Lock()
	h = m.Handler(routes(m))
	mu.Unlock()
	return app
}

// newProvider starts an authtest provider, closed by t.Cleanup.
func newProvider(t testing.TB, cfg authtest.Config) *authtest.Provider {
	t.Helper()
	p := authtest.NewProvider(cfg)
	t.Cleanup(p.Close)
	return p
}

// routes is the application under test.
func routes(m *auth.Middleware) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		if u := auth.User(r.Context()); u != nil {
			io.WriteString(w, "hello "+u.Subject)
			return
		}
		io.WriteString(w, "anonymous")
	})
	mux.Handle("/me", m.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(auth.User(r.Context()))
	})))
	mux.Handle("/token", m.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, auth.Token(r.Context()).AccessToken)
	})))
	return mux
}

// login signs sub in through the real flow and returns the browser, which
// follows redirects. Cookies are per host, not per port, so the browser
// sends its session cookie to every app on 127.0.0.1.
func (app *testApp) login(t testing.TB, sub string) *http.Client {
	t.Helper()
	return app.p.Login(t, app.URL+"/auth/login", sub)
}

// get sends a GET with optional header pairs and returns the response
// with its body read.
func get(t testing.TB, c *http.Client, rawURL string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// me returns the status of GET /me as an API call and the user.
func (app *testApp) me(t testing.TB, c *http.Client) (int, *auth.Identity) {
	t.Helper()
	res, body := get(t, c, app.URL+"/me", "Accept", "application/json")
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, nil
	}
	var u auth.Identity
	if err := json.Unmarshal([]byte(body), &u); err != nil {
		t.Fatalf("GET /me: decode %q: %v", body, err)
	}
	return res.StatusCode, &u
}

// copyBrowser returns a browser holding a copy of c's cookies for app,
// like a second tab or a stolen cookie.
func copyBrowser(t testing.TB, app *testApp, c *http.Client) *http.Client {
	t.Helper()
	b := app.p.Browser(t, "")
	u := mustURL(t, app.URL)
	b.Jar.SetCookies(u, c.Jar.Cookies(u))
	return b
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// redisServer is a redis-server process of the test's own, which it can
// stop and start again on the same port. It keeps its data in an
// append-only file, so a restart finds the sessions again.
type redisServer struct {
	t    testing.TB
	port int
	dir  string
	cmd  *exec.Cmd
}

// startRedis starts a redis-server found on PATH on a free loopback port;
// t.Cleanup stops it.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		need(t, "redis-server")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &redisServer{t: t, port: port, dir: t.TempDir()}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func (s *redisServer) start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", s.dir)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr(), DialerRetries: 1, MaxRetries: -1})
	defer c.Close()
	for i := 0; ; i++ {
		if c.Ping(context.Background()).Err() == nil {
			return
		}
		if i == 100 {
			s.t.Fatalf("redis-server on port %d does not answer", s.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server, as a crash or an outage would.
func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

func mustURL(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
