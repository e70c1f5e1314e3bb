package auth

import (
	"fmt"
	"testing"
	"time"
)

// TestBoundedCache checks the limits every in-memory cache of the package
// relies on: entries expire, are swept, and the entry and byte bounds
// hold whatever is put.
func TestBoundedCache(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	t.Run("expiry", func(t *testing.T) {
		c := newBoundedCache[string, int](10, 1000)
		c.put("a", 1, 10, now.Add(time.Second), now)
		if v, ok := c.get("a", now); !ok || v != 1 {
			t.Errorf("get before expiry = %v, %v; want 1, true", v, ok)
		}
		if _, ok := c.get("a", now.Add(time.Second)); ok {
			t.Errorf("get at expiry found the entry")
		}
	})
	t.Run("entry bound", func(t *testing.T) {
		c := newBoundedCache[string, int](10, 1<<20)
		for i := range 100 {
			c.put(fmt.Sprint(i), i, 1, now.Add(time.Hour), now)
		}
		if n := c.len(); n != 10 {
			t.Errorf("len after 100 puts into 10 entries = %d", n)
		}
		if _, ok := c.get("99", now); !ok {
			t.Errorf("the last put was evicted")
		}
	})
	t.Run("byte bound", func(t *testing.T) {
		c := newBoundedCache[string, int](1000, 1000)
		for i := range 100 {
			c.put(fmt.Sprint(i), i, 300, now.Add(time.Hour), now)
			if c.bytes > 1000 {
				t.Fatalf("bytes = %d after put %d, bound 1000", c.bytes, i)
			}
		}
		if n := c.len(); n != 3 {
			t.Errorf("len with 300-byte entries in 1000 bytes = %d, want 3", n)
		}
		c.put("huge", 0, 1001, now.Add(time.Hour), now)
		if _, ok := c.get("huge", now); ok {
			t.Errorf("an entry larger than the cache was stored")
		}
	})
	t.Run("sweep", func(t *testing.T) {
		c := newBoundedCache[string, int](1000, 1<<20)
		for i := range 100 {
			c.put(fmt.Sprint(i), i, 10, now.Add(time.Second), now)
		}
		later := now.Add(sweepEvery + time.Second)
		c.put("new", 1, 10, later.Add(time.Second), later)
		if n, b := c.len(), c.bytes; n != 1 || b != 10 {
			t.Errorf("after expiry and a sweep: %d entries, %d bytes; want 1, 10", n, b)
		}
	})
	t.Run("add", func(t *testing.T) {
		c := newBoundedCache[string, int](10, 1000)
		if !c.add("k", 1, 1, now.Add(time.Second), now) || c.add("k", 2, 1, now.Add(time.Second), now) {
			t.Errorf("add: want the first to store and the second not")
		}
		if !c.add("k", 3, 1, now.Add(3*time.Second), now.Add(2*time.Second)) {
			t.Errorf("add over an expired entry did not store")
		}
	})
	t.Run("off", func(t *testing.T) {
		c := newBoundedCache[string, int](0, 0)
		c.put("a", 1, 1, now.Add(time.Hour), now)
		if c.len() != 0 {
			t.Errorf("a cache of 0 entries stored one")
		}
	})
}
