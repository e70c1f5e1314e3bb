package redisstore_test

import (
	"context"
	"crypto/rand"
	"os"
	"sync"
	"testing"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/redisstore"
	"github.com/gatehouse/auth/storetest"
	"github.com/redis/go-redis/v9"
)

// TestConformance runs the storetest suite on Redis: on the server of
// REDIS_URL (which CI=true requires), and on Sentinel and Cluster when
// REDIS_SENTINEL_URL and REDIS_CLUSTER_URL name them. Every store has a
// key prefix of its own, whose keys are deleted at the end; a peer is a
// Store on a client of its own with the same prefix, and dies when its
// client is closed.
func TestConformance(t *testing.T) {
	for _, tp := range []struct{ kind, env string }{
		{"standalone", "REDIS_URL"},
		{"sentinel", "REDIS_SENTINEL_URL"},
		{"cluster", "REDIS_CLUSTER_URL"},
	} {
		t.Run(tp.kind, func(t *testing.T) {
			rawURL := os.Getenv(tp.env)
			if rawURL == "" {
				if tp.env == "REDIS_URL" && os.Getenv("CI") == "true" {
					t.Fatal("REDIS_URL is missing: CI runs these tests through .ci/with-redis")
				}
				t.Skipf("%s is not set: run the tests through .ci/with-redis to test against Redis", tp.env)
			}
			var mu sync.Mutex
			prefixes := map[auth.Store]string{}
			storetest.Options{
				NewStore: func(t *testing.T) auth.Store {
					c := confClient(t, tp.kind, rawURL)
					prefix := "test:conf:" + rand.Text()[:10] + ":"
					t.Cleanup(func() { confDeleteKeys(t, c, prefix) })
					s := redisstore.New(c, redisstore.Options{Prefix: prefix})
					mu.Lock()
					prefixes[s] = prefix
					mu.Unlock()
					return s
				},
				Unreachable: func(t *testing.T) auth.Store {
					return redisstore.New(confClient(t, tp.kind, ""), redisstore.Options{})
				},
				Peer: func(t *testing.T, s auth.Store) (auth.Store, func()) {
					mu.Lock()
					prefix := prefixes[s]
					mu.Unlock()
					c := confClient(t, tp.kind, rawURL)
					return redisstore.New(c, redisstore.Options{Prefix: prefix}), func() { c.Close() }
				},
			}.Run(t)
		})
	}
}

// confClient returns a client of the kind for the URL, closed by
// t.Cleanup. An empty URL gives a client of a server that is not there
// (127.0.0.1:1), which does not retry.
func confClient(t *testing.T, kind, rawURL string) redis.UniversalClient {
	t.Helper()
	const nowhere = "127.0.0.1:1"
	var c redis.UniversalClient
	switch kind {
	case "standalone":
		o := &redis.Options{Addr: nowhere, MaxRetries: -1, DialerRetries: 1}
		if rawURL != "" {
			var err error
			if o, err = redis.ParseURL(rawURL); err != nil {
				t.Fatalf("redis.ParseURL(%q): %v", rawURL, err)
			}
		}
		c = redis.NewClient(o)
	case "sentinel":
		o := &redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: []string{nowhere}, MaxRetries: -1, DialerRetries: 1}
		if rawURL != "" {
			var err error
			if o, err = redis.ParseFailoverURL(rawURL); err != nil {
				t.Fatalf("redis.ParseFailoverURL(%q): %v", rawURL, err)
			}
		}
		c = redis.NewFailoverClient(o)
	case "cluster":
		o := &redis.ClusterOptions{Addrs: []string{nowhere}, MaxRetries: -1, DialerRetries: 1}
		if rawURL != "" {
			var err error
			if o, err = redis.ParseClusterURL(rawURL); err != nil {
				t.Fatalf("redis.ParseClusterURL(%q): %v", rawURL, err)
			}
		}
		c = redis.NewClusterClient(o)
	default:
		t.Fatalf("unknown kind of Redis %q", kind)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// confDeleteKeys deletes the keys under prefix, on every master of a
// Cluster.
func confDeleteKeys(t *testing.T, c redis.UniversalClient, prefix string) {
	ctx := context.Background()
	del := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		return iter.Err()
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return del(ctx, n) })
	} else {
		err = del(ctx, c)
	}
	if err != nil {
		t.Errorf("delete the test's keys %s*: %v", prefix, err)
	}
}
