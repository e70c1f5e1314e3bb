package redisstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
	"github.com/gatehouse/auth/redisstore"
	"github.com/redis/go-redis/v9"
)

// TestMain silences go-redis's log of failed dials, hundreds of lines
// when a test kills a server, unless the tests run with -v.
func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Verbose() {
		redis.SetLogger(quietLogger{})
	}
	os.Exit(m.Run())
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

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

// onEachTopology runs f as a subtest on each topology, the three at
// once. One whose variable is unset is skipped, or fails under CI.
func onEachTopology(t *testing.T, f func(t *testing.T, tp topology)) {
	t.Helper()
	for _, tp := range topologies {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			f(t, tp)
		})
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

// unreachable returns a client of the topology's kind for a server that
// is not there (127.0.0.1:1), which does not retry.
func (tp topology) unreachable(t testing.TB) redis.UniversalClient {
	t.Helper()
	u := "redis://127.0.0.1:1"
	if tp.name == "sentinel" {
		u += "?master_name=mymaster"
	}
	return connect(t, tp.name, u, func(o *redis.UniversalOptions) { o.MaxRetries, o.DialerRetries = -1, 1 })
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

// wantOnlyTombstones fails the test if a key under prefix other than a
// deleted session's tombstone is left after a deletion (such as logout).
func wantOnlyTombstones(t testing.TB, c redis.UniversalClient, prefix, deletion string) {
	t.Helper()
	for _, k := range keys(t, c, prefix) {
		if !strings.HasSuffix(k, "}:gone") {
			t.Errorf("key %s left after %s", k, deletion)
		}
	}
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

// newApp starts an app for the provider p with sessions in store; edit
// may change the config before New. Several apps for one provider and one
// store are instances of one application: same secret, same sessions.
func newApp(t testing.TB, p *authtest.Provider, store auth.Store, edit func(*auth.Config)) *apptest.App {
	t.Helper()
	return apptest.NewFor(t, p, func(c *auth.Config) {
		c.Store = store
		if edit != nil {
			edit(c)
		}
	})
}

// newProvider starts an authtest provider, closed by t.Cleanup.
func newProvider(t testing.TB, cfg authtest.Config) *authtest.Provider {
	t.Helper()
	p := authtest.NewProvider(cfg)
	t.Cleanup(p.Close)
	return p
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

// faults is a go-redis hook that fails the commands it is told to, as if
// the node holding their keys were unreachable: while cut is set, every
// command a key of which cut matches fails before it is sent. It also
// counts the commands a key of which watch matches.
type faults struct {
	mu      sync.Mutex
	cut     func(key string) bool
	watch   func(key string) bool
	watched int
}

// errCut is the error of a command faults stops.
var errCut = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("unreachable (test fault)")}

// addFaults adds a faults hook to c.
func addFaults(c redis.UniversalClient) *faults {
	f := &faults{}
	c.AddHook(f)
	return f
}

// setCut makes the commands whose keys match fail; nil restores them.
func (f *faults) setCut(match func(key string) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut = match
}

// setWatch counts the commands whose keys match, from now on.
func (f *faults) setWatch(match func(key string) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watch = match
	f.watched = 0
}

// counted returns how many commands matched the watch.
func (f *faults) counted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.watched
}

func (f *faults) check(cmd redis.Cmder) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	watched, cut := false, false
	for _, k := range cmdKeys(cmd) {
		watched = watched || f.watch != nil && f.watch(k)
		cut = cut || f.cut != nil && f.cut(k)
	}
	if watched {
		f.watched++
	}
	if cut {
		return errCut
	}
	return nil
}

// cmdKeys returns the keys a command names: those of a script, every
// argument of DEL, the first argument of the other commands.
func cmdKeys(cmd redis.Cmder) []string {
	var out []string
	args := cmd.Args()
	switch strings.ToLower(cmd.Name()) {
	case "eval", "evalsha", "eval_ro", "evalsha_ro":
		if len(args) < 3 {
			return nil
		}
		n, _ := args[2].(int)
		for i := 3; i < 3+n && i < len(args); i++ {
			if s, ok := args[i].(string); ok {
				out = append(out, s)
			}
		}
	case "del":
		for _, a := range args[1:] {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
	default:
		if len(args) > 1 {
			if s, ok := args[1].(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func (f *faults) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *faults) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := f.check(cmd); err != nil {
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (f *faults) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if err := f.check(cmd); err != nil {
				for _, c := range cmds {
					c.SetErr(err)
				}
				return err
			}
		}
		return next(ctx, cmds)
	}
}

// scratch is a Redis setup of a test's own, started by .ci/redis-topology
// under REDIS_SCRATCH_DIR (which .ci/with-redis sets, and cleans up
// whatever happens to the test), so that the test may kill and restart its
// servers. t.Cleanup stops it, and prints its logs if the test failed.
type scratch struct {
	t    testing.TB
	kind string
	dir  string
	url  string
}

const topologyScript = "../.ci/redis-topology"

// startScratch starts a setup of the kind (standalone, sentinel, cluster).
func startScratch(t testing.TB, kind string) *scratch {
	t.Helper()
	base := os.Getenv("REDIS_SCRATCH_DIR")
	if base == "" {
		need(t, "REDIS_SCRATCH_DIR")
	}
	dir, err := os.MkdirTemp(base, kind+"-")
	if err != nil {
		t.Fatal(err)
	}
	s := &scratch{t: t, kind: kind, dir: dir}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command(topologyScript, "logs", dir).CombinedOutput()
			t.Logf("logs of the %s setup:\n%s", kind, out)
		}
		if out, err := exec.Command(topologyScript, "stop", dir).CombinedOutput(); err != nil {
			t.Errorf("stop the %s setup: %v\n%s", kind, err, out)
		}
		os.RemoveAll(dir)
	})
	var stderr bytes.Buffer
	cmd := exec.Command(topologyScript, "start", kind, dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("start the %s setup: %v\n%s", kind, err, stderr.Bytes())
	}
	for line := range strings.Lines(string(out)) {
		if _, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			s.url = v
		}
	}
	if s.url == "" {
		t.Fatalf("start the %s setup: no URL in %q", kind, out)
	}
	return s
}

// client connects to the setup, with edit applied to the options.
func (s *scratch) client(edit func(*redis.UniversalOptions)) redis.UniversalClient {
	s.t.Helper()
	return connect(s.t, s.kind, s.url, edit)
}

// nodeDir returns the directory of the server at addr (127.0.0.1:PORT).
func (s *scratch) nodeDir(addr string) string {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	ports, _ := filepath.Glob(filepath.Join(s.dir, "*", "port"))
	for _, f := range ports {
		if b, _ := os.ReadFile(f); strings.TrimSpace(string(b)) == port {
			return filepath.Dir(f)
		}
	}
	s.t.Fatalf("no server of the %s setup at %s", s.kind, addr)
	return ""
}

// kill kills the server at addr with SIGKILL, as a crash would.
func (s *scratch) kill(addr string) {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.nodeDir(addr), "redis.pid"))
	if err != nil {
		s.t.Fatalf("kill %s: %v", addr, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		s.t.Fatalf("kill %s: pid file: %v", addr, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		s.t.Fatalf("kill %s (pid %d): %v", addr, pid, err)
	}
}

// restart starts the server at addr again, after kill.
func (s *scratch) restart(addr string) {
	s.t.Helper()
	if out, err := exec.Command(topologyScript, "restart", s.nodeDir(addr)).CombinedOutput(); err != nil {
		s.t.Fatalf("restart %s: %v\n%s", addr, err, out)
	}
}
