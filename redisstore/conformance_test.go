package redisstore_test

import (
	"sync"
	"testing"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/redisstore"
	"github.com/gatehouse/auth/storetest"
)

// TestConformance runs the storetest suite on Redis, on each topology.
// Every store has a key prefix of its own, whose keys are deleted at the
// end; a peer is a Store on a client of its own with the same prefix, and
// dies when its client is closed.
func TestConformance(t *testing.T) {
	onEachTopology(t, func(t *testing.T, tp topology) {
		var mu sync.Mutex
		prefixes := map[auth.Store]string{}
		storetest.Options{
			NewStore: func(t *testing.T) auth.Store {
				s, _, prefix := newStore(t, tp)
				mu.Lock()
				prefixes[s] = prefix
				mu.Unlock()
				return s
			},
			Unreachable: func(t *testing.T) auth.Store {
				return redisstore.New(tp.unreachable(t), redisstore.Options{})
			},
			Peer: func(t *testing.T, s auth.Store) (auth.Store, func()) {
				mu.Lock()
				prefix := prefixes[s]
				mu.Unlock()
				c := tp.client(t)
				return redisstore.New(c, redisstore.Options{Prefix: prefix}), func() { c.Close() }
			},
		}.Run(t)
	})
}
