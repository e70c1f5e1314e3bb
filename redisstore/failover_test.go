package redisstore_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
// dead master until its next periodic reload, a minute later); and a
// refresh lock released while the master was down is free by then, not
// held on the promoted replica for its ttl.
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
			unlock, err := s.LockRefresh(ctx, ids[0], 20*time.Second)
			if err != nil {
				t.Fatalf("LockRefresh: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // the replica has the lock too
			sc.kill(victim)
			killed := time.Now()
			unlock() // fails for now
			if d := time.Since(killed); d > time.Second {
				t.Errorf("unlock with the master down took %v, want it to return at once", d)
			}
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
