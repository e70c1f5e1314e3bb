package redisstore_test

import (
	"context"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
	"github.com/gatehouse/auth/redisstore"
	"github.com/redis/go-redis/v9"
)

// failFast is the client configuration of the failover tests, the one
// the package documentation recommends: an application that answers 503
// quickly when Redis does not.
func failFast(o *redis.UniversalOptions) {
	o.DialTimeout = 500 * time.Millisecond
	o.ReadTimeout = 500 * time.Millisecond
	o.WriteTimeout = 500 * time.Millisecond
	o.ContextTimeoutEnabled = true
	o.DialerRetries = 1
}

// master returns the address of the master that holds key, as the setup
// sees it now (the surviving nodes of a Cluster, the sentinels), asking
// none of the servers in dead.
func (s *scratch) master(key string, dead ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var addrs []string
	var masterName string
	switch s.kind {
	case "cluster":
		o, _ := redis.ParseClusterURL(s.url)
		addrs = o.Addrs
	case "sentinel":
		o, _ := redis.ParseFailoverURL(s.url)
		addrs, masterName = o.SentinelAddrs, o.MasterName
	default:
		o, _ := redis.ParseURL(s.url)
		return o.Addr
	}
	for _, a := range addrs {
		if strings.Contains(" "+strings.Join(dead, " ")+" ", " "+a+" ") {
			continue
		}
		if s.kind == "sentinel" {
			c := redis.NewSentinelClient(&redis.Options{Addr: a, DialerRetries: 1, MaxRetries: -1})
			m, err := c.GetMasterAddrByName(ctx, masterName).Result()
			c.Close()
			if err == nil && len(m) == 2 {
				return net.JoinHostPort(m[0], m[1])
			}
			continue
		}
		c := redis.NewClient(&redis.Options{Addr: a, DialerRetries: 1, MaxRetries: -1})
		slot, err := c.ClusterKeySlot(ctx, key).Result()
		var slots []redis.ClusterSlot
		if err == nil {
			//lint:ignore SA1019 CLUSTER SLOTS names each slot's master first, all this needs; go-redis reads it too
			slots, err = c.ClusterSlots(ctx).Result()
		}
		c.Close()
		if err != nil {
			continue
		}
		for _, r := range slots {
			if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 0 {
				return r.Nodes[0].Addr
			}
		}
	}
	s.t.Fatalf("no server of the %s setup knows the master of %s", s.kind, key)
	return ""
}

// TestFailoverReconnects: when the master that holds sessions dies and a
// replica takes over, the store reaches the new master within moments of
// the promotion (go-redis's Cluster client alone would keep dialling the
// dead master until its next periodic reload, a minute later); a refresh
// lock released while the master was down is free by then, not held on the
// promoted replica for its ttl; and a lock held through the failover by a
// process that retries its save keeps every other process out until that
// save is done.
func TestFailoverReconnects(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"cluster", "sentinel"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			sc := startScratch(t, kind)
			s := redisstore.New(sc.client(failFast), redisstore.Options{})
			ctx := context.Background()
			ids := make([]string, 30)
			for i := range ids {
				ids[i] = newID()
				if err := s.Save(ctx, ids[i], []byte("v"), info("alice", "")); err != nil {
					t.Fatalf("Save: %v", err)
				}
			}
			sessionKey := func(id string) string { return "gatehouse:{" + id + "}:s" }
			victim := sc.master(sessionKey(ids[0]))
			var onVictim []string
			for _, id := range ids {
				if sc.master(sessionKey(id)) == victim {
					onVictim = append(onVictim, id)
				}
			}
			if len(onVictim) < 2 {
				t.Fatalf("%d of %d sessions on the master of the first, want 2 or more", len(onVictim), len(ids))
			}
			unlock, err := s.LockRefresh(ctx, ids[0], 20*time.Second)
			if err != nil {
				t.Fatalf("LockRefresh: %v", err)
			}
			// A refresh under way when the master dies, as the core
			// does it: its process holds the lock (renewed; its ttl
			// longer than the failover, during which no renewal can
			// reach Redis) and retries its save until the promoted
			// replica takes it, then unlocks. Another process waits for
			// the lock meanwhile (3 s at a time), and once it has it,
			// finds the saved session.
			busy := onVictim[1]
			unlockBusy, err := s.LockRefresh(ctx, busy, 10*time.Second)
			if err != nil {
				t.Fatalf("LockRefresh: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // the replica has the locks too
			sc.kill(victim)
			killed := time.Now()
			unlock() // fails for now
			if d := time.Since(killed); d > time.Second {
				t.Errorf("unlock with the master down took %v, want it to return at once", d)
			}
			var saved, locked time.Time
			var lockedFound string
			var busyWG sync.WaitGroup
			busyWG.Go(func() {
				defer unlockBusy()
				for time.Since(killed) < 20*time.Second {
					sctx, cancel := context.WithTimeout(ctx, time.Second)
					err := s.Save(sctx, busy, []byte("refreshed"), info("alice", ""))
					cancel()
					if err == nil {
						saved = time.Now()
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			})
			other := redisstore.New(sc.client(failFast), redisstore.Options{})
			busyWG.Go(func() {
				for time.Since(killed) < 20*time.Second {
					lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
					unlock, err := other.LockRefresh(lctx, busy, 10*time.Second)
					cancel()
					if err != nil {
						time.Sleep(100 * time.Millisecond)
						continue
					}
					locked = time.Now()
					data, _, err := other.Load(ctx, busy)
					lockedFound = fmt.Sprintf("%q, %v", data, err)
					unlock()
					return
				}
			})
			var promoted, recovered time.Time
			for time.Since(killed) < 20*time.Second && (promoted.IsZero() || recovered.IsZero()) {
				if promoted.IsZero() && sc.master(sessionKey(ids[0]), victim) != victim {
					promoted = time.Now()
				}
				var failures atomic.Int32
				var wg sync.WaitGroup
				for _, id := range onVictim {
					wg.Go(func() {
						lctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
						defer cancel()
						if _, found, err := s.Load(lctx, id); !found || err != nil {
							failures.Add(1)
						}
					})
				}
				wg.Wait()
				if failures.Load() == 0 && !promoted.IsZero() {
					recovered = time.Now()
				}
				time.Sleep(20 * time.Millisecond)
			}
			switch {
			case promoted.IsZero():
				t.Fatalf("no replica took over within 20s of killing the master %s", victim)
			case recovered.IsZero():
				t.Fatalf("the %d sessions on the killed master were not found again within 20s (replica promoted %v after the kill)", len(onVictim), promoted.Sub(killed).Round(time.Millisecond))
			}
			t.Logf("%s: master killed; replica promoted after %v; sessions found again %v later",
				kind, promoted.Sub(killed).Round(time.Millisecond), recovered.Sub(promoted).Round(time.Millisecond))
			if d := recovered.Sub(promoted); d > 2*time.Second {
				t.Errorf("sessions found again %v after the replica's promotion, want within 2s", d)
			}
			busyWG.Wait()
			switch {
			case saved.IsZero():
				t.Errorf("the save under the lock did not succeed within 20s of the kill")
			case locked.IsZero():
				t.Errorf("the other process did not get the lock within 20s of the kill")
			case lockedFound != `"refreshed", <nil>`:
				t.Errorf("the other process got the lock %v after the save under it, and loaded %s; want the saved session", locked.Sub(saved).Round(time.Millisecond), lockedFound)
			case locked.Sub(saved) > 2*time.Second:
				t.Errorf("the other process got the lock %v after the save under it, want within 2s", locked.Sub(saved).Round(time.Millisecond))
			}
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			unlock, err = s.LockRefresh(lctx, ids[0], 20*time.Second)
			if err != nil {
				t.Fatalf("LockRefresh %v after the promotion, of a lock released while the master was down: %v", time.Since(promoted).Round(time.Millisecond), err)
			}
			unlock()
			if d := time.Since(promoted); d > 3*time.Second {
				t.Errorf("a lock released while the master was down was free %v after the promotion, want within 3s", d.Round(time.Millisecond))
			}
		})
	}
}

// TestFailoverUnderTraffic: two instances of an application share
// sessions in a Cluster (then under Sentinel) and a provider that rotates
// refresh tokens strictly; access tokens last 3 s, so sessions refresh
// all the time. Clients keep sending requests for random sessions to
// random instances while the master that holds sessions is killed, a
// replica takes over, and the old master comes back. No session may be
// lost, no refresh token used twice, no request may fail with anything
// but 503 with Retry-After or take over 5 s, and requests must succeed
// again within moments of the promotion. (A refresh whose grant is under
// way when the master dies needs the core to hold the lock and keep
// saving until the new master takes the session; else the other instance
// uses the rotated token and the session ends.)
//
// Its numbers are in the log (go test -v -run TestFailoverUnderTraffic).
// FAILOVER_SESSIONS sets the number of sessions (default 200).
func TestFailoverUnderTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("a failover under traffic takes about 20 s per setup")
	}
	t.Parallel()
	n := 200
	if v, err := strconv.Atoi(os.Getenv("FAILOVER_SESSIONS")); err == nil && v > 0 {
		n = v
	}
	for _, kind := range []string{"cluster", "sentinel"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			failoverUnderTraffic(t, kind, n)
		})
	}
}

// trafficStats are the outcomes of the requests of a traffic run.
type trafficStats struct {
	mu               sync.Mutex
	requests         int
	status           map[int]int
	noRetryAfter     int // 503s without Retry-After
	errors           int // transport errors and timeouts
	slowest          time.Duration
	failingSince     []time.Time   // per session: its first 503 or error since its last 200
	longestOutage    time.Duration // longest time from a session's 503 or error to its next 200
	firstFailure     time.Time     // of a 503 or an error
	lastFailure      time.Time
	firstErrorSample string
}

func (st *trafficStats) record(session int, start time.Time, status int, retryAfter string, err error) {
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.requests++
	st.slowest = max(st.slowest, now.Sub(start))
	switch {
	case err != nil:
		st.errors++
		if st.firstErrorSample == "" {
			st.firstErrorSample = err.Error()
		}
	default:
		st.status[status]++
		if status == http.StatusServiceUnavailable && retryAfter == "" {
			st.noRetryAfter++
		}
	}
	switch {
	case err == nil && status == http.StatusOK:
		if since := st.failingSince[session]; !since.IsZero() {
			st.longestOutage = max(st.longestOutage, now.Sub(since))
			st.failingSince[session] = time.Time{}
		}
	case err != nil || status == http.StatusServiceUnavailable:
		if st.failingSince[session].IsZero() {
			st.failingSince[session] = start
		}
		if st.firstFailure.IsZero() {
			st.firstFailure = start
		}
		st.lastFailure = now
	}
}

func failoverUnderTraffic(t *testing.T, kind string, n int) {
	const (
		clients   = 20
		pace      = 40 * time.Millisecond // between a client's requests
		accessTTL = 3 * time.Second
		before    = 2 * time.Second // of traffic before the kill
		after     = 3 * time.Second // of traffic after the promotion, before the restart
		restarted = 2 * time.Second // of traffic after the restart
	)
	sc := startScratch(t, kind)
	store := redisstore.New(sc.client(failFast), redisstore.Options{})
	p := newProvider(t, authtest.Config{AccessTokenTTL: accessTTL, Rotation: authtest.Rotate})
	apps := []*apptest.App{newApp(t, p, store, nil), newApp(t, p, store, nil)}
	browsers := make([]*http.Client, n)
	for i := range browsers {
		sub := fmt.Sprintf("user%03d", i)
		p.AddUser(authtest.User{Subject: sub})
		browsers[i] = apps[i%2].Login(t, sub)
	}
	// The master of a session will be killed.
	var sessionKeys []string
	for _, k := range keys(t, sc.client(nil), "gatehouse:") {
		if strings.HasSuffix(k, "}:s") {
			sessionKeys = append(sessionKeys, k)
		}
	}
	victim := sc.master(sessionKeys[0])
	onVictim := 0
	for _, k := range sessionKeys {
		if sc.master(k) == victim {
			onVictim++
		}
	}
	p.Reset() // count the grants of the run only
	st := &trafficStats{status: map[int]int{}, failingSince: make([]time.Time, n)}
	start := time.Now()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			r := mrand.New(mrand.NewPCG(uint64(c), 1))
			for ctx.Err() == nil {
				i := r.IntN(n)
				app := apps[r.IntN(2)]
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				req, _ := http.NewRequestWithContext(rctx, http.MethodGet, app.URL+"/me", nil)
				req.Header.Set("Accept", "application/json")
				t0 := time.Now()
				res, err := browsers[i].Do(req)
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					st.record(i, t0, res.StatusCode, res.Header.Get("Retry-After"), nil)
				} else if ctx.Err() == nil {
					st.record(i, t0, 0, "", err)
				}
				cancel()
				time.Sleep(pace)
			}
		})
	}

	time.Sleep(before)
	sc.kill(victim)
	killed := time.Now()
	var promoted time.Time
	for time.Since(killed) < 20*time.Second {
		if sc.master(sessionKeys[0], victim) != victim {
			promoted = time.Now()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if promoted.IsZero() {
		stop()
		wg.Wait()
		t.Fatalf("no replica took over within 20s of killing the master %s", victim)
	}
	time.Sleep(after)
	sc.restart(victim)
	time.Sleep(restarted)
	stop()
	wg.Wait()
	end := time.Now()
	// Every session still works, on both instances.
	var lost atomic.Int32
	work := make(chan int)
	for range clients {
		wg.Go(func() {
			for i := range work {
				for _, app := range apps {
					status, err := meStatus(app, browsers[i])
					if status == http.StatusOK {
						continue
					}
					if lost.Add(1) <= 3 {
						t.Logf("session %d: GET %s/me after the run: status %d (%v); the instances' logs of user%03d:\n%s",
							i, app.URL, status, err, i, userLogs(apps, fmt.Sprintf("user%03d", i)))
					}
					break
				}
			}
		})
	}
	for i := range browsers {
		work <- i
	}
	close(work)
	wg.Wait()
	refreshes, grants := 0, p.Grants("refresh_token")
	for _, r := range p.Requests() {
		if r.Endpoint == "token" && r.GrantType == "refresh_token" {
			refreshes++
		}
	}

	st.mu.Lock()
	defer st.mu.Unlock()
	recovery := time.Duration(0)
	if st.lastFailure.After(promoted) {
		recovery = st.lastFailure.Sub(promoted)
	}
	t.Logf("%s, %d sessions (%d on the killed master), %d clients, access tokens of %v, strict rotation: %.1f s of traffic; master killed at %.1f s, replica promoted %.1f s later, old master restarted %.1f s after that",
		kind, n, onVictim, clients, accessTTL, end.Sub(start).Seconds(), killed.Sub(start).Seconds(), promoted.Sub(killed).Seconds(), after.Seconds())
	t.Logf("%s: %d requests: %v; 503 without Retry-After: %d; transport errors: %d; slowest %v",
		kind, st.requests, st.status, st.noRetryAfter, st.errors, st.slowest.Round(time.Millisecond))
	t.Logf("%s: longest outage of a session (from a 503 or error to its next 200): %v; 503s and errors from %.1f s to %.1f s (%v after the promotion)",
		kind, st.longestOutage.Round(time.Millisecond), sinceOrZero(st.firstFailure, start), sinceOrZero(st.lastFailure, start), recovery.Round(time.Millisecond))
	t.Logf("%s: refresh grants: %d (%.1f per session), refresh requests refused (a refresh token used twice): %d; sessions lost: %d of %d",
		kind, grants, float64(grants)/float64(n), refreshes-grants, lost.Load(), n)

	if lost.Load() > 0 {
		t.Errorf("%d of %d sessions lost, want none", lost.Load(), n)
	}
	if refreshes != grants {
		t.Errorf("%d refresh requests refused by the provider (a rotated refresh token reused), want none", refreshes-grants)
	}
	for status, count := range st.status {
		if status != http.StatusOK && status != http.StatusServiceUnavailable {
			t.Errorf("%d requests answered %d, want only 200 and 503", count, status)
		}
	}
	if st.noRetryAfter > 0 {
		t.Errorf("%d 503s without Retry-After", st.noRetryAfter)
	}
	if st.errors > 0 {
		t.Errorf("%d requests failed or timed out (first: %s), want none", st.errors, st.firstErrorSample)
	}
	if st.slowest > 5*time.Second {
		t.Errorf("the slowest request took %v, want none over 5s", st.slowest.Round(time.Millisecond))
	}
	if recovery > 3*time.Second {
		t.Errorf("requests answered 503 or failed until %v after the promotion, want within 3s", recovery.Round(time.Millisecond))
	}
}

// meStatus returns the status of GET /me as an API call from browser b.
func meStatus(app *apptest.App, b *http.Client) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, app.URL+"/me", nil)
	req.Header.Set("Accept", "application/json")
	res, err := b.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// userLogs returns the lines of the apps' logs about the user sub, each
// prefixed with its app's number.
func userLogs(apps []*apptest.App, sub string) string {
	var b strings.Builder
	for i, app := range apps {
		for line := range strings.Lines(app.Logs.String()) {
			if strings.Contains(line, "session.sub="+sub+" ") {
				fmt.Fprintf(&b, "app%d: %s", i+1, line)
			}
		}
	}
	return b.String()
}

func sinceOrZero(t, start time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return t.Sub(start).Seconds()
}
