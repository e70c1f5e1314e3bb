package auth

import (
	"sync"
	"time"
)

// boundedCache is the one in-memory map with limits that the package
// uses: the cache of verified sessions, the refresh grace and backoff
// caches, and the replay guard of back-channel logout tokens. Each entry
// expires at its own time; the cache holds at most maxEntries entries and
// maxBytes bytes (as the caller sizes its values). Expired entries are
// swept at most once a sweepEvery, by the put that finds the sweep due;
// when the cache is full, arbitrary entries make room (map order is
// random, which makes this a cheap random eviction). It is safe for
// concurrent use; reads share a read lock.
type boundedCache[K comparable, V any] struct {
	mu         sync.RWMutex
	entries    map[K]cacheEntry[V]
	bytes      int
	maxEntries int
	maxBytes   int
	sweepAt    time.Time
}

type cacheEntry[V any] struct {
	v     V
	size  int
	until time.Time
}

const sweepEvery = 30 * time.Second

func newBoundedCache[K comparable, V any](maxEntries, maxBytes int) *boundedCache[K, V] {
	return &boundedCache[K, V]{entries: map[K]cacheEntry[V]{}, maxEntries: maxEntries, maxBytes: maxBytes}
}

// get returns the value of k if it has not expired at now.
func (c *boundedCache[K, V]) get(k K, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// put stores v under k until until; size is what it counts against
// maxBytes. A value larger than the whole cache is not stored.
func (c *boundedCache[K, V]) put(k K, v V, size int, until, now time.Time) {
	c.store(k, v, size, until, now, true)
}

// add stores v under k like put, unless k holds a value that has not
// expired; it reports whether it stored v.
func (c *boundedCache[K, V]) add(k K, v V, size int, until, now time.Time) bool {
	return c.store(k, v, size, until, now, false)
}

func (c *boundedCache[K, V]) store(k K, v V, size int, until, now time.Time, replace bool) bool {
	if c.maxEntries <= 0 || size > c.maxBytes || !now.Before(until) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok && !replace && now.Before(e.until) {
		return false
	}
	c.deleteLocked(k)
	if !now.Before(c.sweepAt) {
		for k2, e := range c.entries {
			if !now.Before(e.until) {
				c.deleteLocked(k2)
			}
		}
		c.sweepAt = now.Add(sweepEvery)
	}
	for k2 := range c.entries {
		if len(c.entries) < c.maxEntries && c.bytes+size <= c.maxBytes {
			break
		}
		c.deleteLocked(k2)
	}
	c.entries[k] = cacheEntry[V]{v, size, until}
	c.bytes += size
	return true
}

// delete removes k.
func (c *boundedCache[K, V]) delete(k K) {
	c.mu.Lock()
	c.deleteLocked(k)
	c.mu.Unlock()
}

// deleteIf removes k if drop says so of its value.
func (c *boundedCache[K, V]) deleteIf(k K, drop func(V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok && drop(e.v) {
		c.deleteLocked(k)
	}
}

func (c *boundedCache[K, V]) deleteLocked(k K) {
	if e, ok := c.entries[k]; ok {
		delete(c.entries, k)
		c.bytes -= e.size
	}
}

// len returns the number of entries, expired ones included.
func (c *boundedCache[K, V]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
