package redisstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/redisstore"
	"github.com/redis/go-redis/v9"
)

// newID returns a session ID as the middleware makes them.
func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func info(sub, sid string) auth.SessionInfo {
	return auth.SessionInfo{Subject: sub, SID: sid, Expiry: time.Now().Add(time.Hour)}
}

func TestSaveLoadDelete(t *testing.T) { onEachTopology(t, testSaveLoadDelete) }

func testSaveLoadDelete(t *testing.T, tp topology) {
	s, c, prefix := newStore(t, tp)
	ctx := context.Background()
	id := newID()
	data := bytes.Repeat([]byte{0, 1, 2, 0xff}, 10<<10) // binary, 40 KB
	if err := s.Save(ctx, id, data, info("alice", "s1")); err != nil {
		t.Fatalf("Save: %v", err)
	}
	got, found, err := s.Load(ctx, id)
	if err != nil || !found || !bytes.Equal(got, data) {
		t.Fatalf("Load after Save: %d bytes, found %v, %v; want the %d bytes saved", len(got), found, err, len(data))
	}
	// The session lives as long as its remaining lifetime.
	ttl := c.PTTL(ctx, prefix+"{"+id+"}:s").Val()
	if ttl < 59*time.Minute || ttl > time.Hour {
		t.Errorf("session TTL = %v, want about 1h (its remaining lifetime)", ttl)
	}
	// Saving again replaces the data and the TTL.
	inf := info("alice", "s1")
	inf.Expiry = time.Now().Add(10 * time.Minute)
	if err := s.Save(ctx, id, []byte("v2"), inf); err != nil {
		t.Fatalf("Save again: %v", err)
	}
	if got, _, _ := s.Load(ctx, id); string(got) != "v2" {
		t.Errorf("Load after a second Save = %q, want v2", got)
	}
	if ttl := c.PTTL(ctx, prefix+"{"+id+"}:s").Val(); ttl > 10*time.Minute {
		t.Errorf("session TTL after a second Save = %v, want at most 10m", ttl)
	}

	if err := s.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, found, err := s.Load(ctx, id); found || err != nil {
		t.Errorf("Load after Delete: found %v, %v; want not found, nil", found, err)
	}
	if err := s.Delete(ctx, newID()); err != nil {
		t.Errorf("Delete of an unknown ID: %v, want nil", err)
	}
	// Nothing left but the tombstone.
	for _, k := range keys(t, c, prefix) {
		if !strings.HasSuffix(k, "}:gone") {
			t.Errorf("key %s left after Delete", k)
		}
	}
}

func TestLoadUnknownOrMalformed(t *testing.T) { onEachTopology(t, testLoadUnknownOrMalformed) }

func testLoadUnknownOrMalformed(t *testing.T, tp topology) {
	s, _, _ := newStore(t, tp)
	for _, id := range []string{newID(), "", "short", strings.Repeat("}", 43), "../../etc/passwd", strings.Repeat("a", 44)} {
		if data, found, err := s.Load(context.Background(), id); found || err != nil || data != nil {
			t.Errorf("Load(%q) = %q, %v, %v; want nil, false, nil", id, data, found, err)
		}
	}
	if err := s.Save(context.Background(), "a}b", []byte("x"), info("alice", "")); err == nil {
		t.Error("Save with a malformed ID: nil error, want one")
	}
}

// TestSaveAfterDelete: a refresh that loaded a session before it was
// deleted cannot write it back.
func TestSaveAfterDelete(t *testing.T) { onEachTopology(t, testSaveAfterDelete) }

func testSaveAfterDelete(t *testing.T, tp topology) {
	s, _, _ := newStore(t, tp)
	ctx := context.Background()
	id := newID()
	if err := s.Save(ctx, id, []byte("v1"), info("alice", "s1")); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if err := s.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	err := s.Save(ctx, id, []byte("v2"), info("alice", "s1"))
	if !errors.Is(err, auth.ErrSessionEnded) {
		t.Errorf("Save after Delete: %v, want ErrSessionEnded", err)
	}
	if _, found, _ := s.Load(ctx, id); found {
		t.Error("Load after Save after Delete: found, want the session to stay deleted")
	}
}

func TestDeleteSubjectAndSID(t *testing.T) { onEachTopology(t, testDeleteSubjectAndSID) }

func testDeleteSubjectAndSID(t *testing.T, tp topology) {
	s, c, prefix := newStore(t, tp)
	ctx := context.Background()
	ids := map[string]auth.SessionInfo{
		newID(): info("alice", "s1"),
		newID(): info("alice", "s1"),
		newID(): info("alice", "s2"),
		newID(): info("bob", "s3"),
		newID(): {Provider: "other", Subject: "alice", SID: "s1", Expiry: time.Now().Add(time.Hour)},
	}
	for id, inf := range ids {
		if err := s.Save(ctx, id, []byte(inf.Subject), inf); err != nil {
			t.Fatalf("Save: %v", err)
		}
	}
	count := func() map[string]int {
		n := map[string]int{}
		for id, inf := range ids {
			if _, found, _ := s.Load(ctx, id); found {
				n[inf.Provider+"/"+inf.Subject]++
			}
		}
		return n
	}
	if n, err := s.DeleteSID(ctx, "", "s1"); n != 2 || err != nil {
		t.Errorf("DeleteSID(s1) = %d, %v; want 2, nil", n, err)
	}
	if got := count(); got["/alice"] != 1 || got["/bob"] != 1 || got["other/alice"] != 1 {
		t.Errorf("sessions after DeleteSID(s1) = %v, want alice's s2, bob's and the other provider's alice", got)
	}
	if n, err := s.DeleteSubject(ctx, "", "alice"); n != 1 || err != nil {
		t.Errorf("DeleteSubject(alice) = %d, %v; want 1, nil", n, err)
	}
	if got := count(); got["/alice"] != 0 || got["/bob"] != 1 || got["other/alice"] != 1 {
		t.Errorf("sessions after DeleteSubject(alice) = %v, want bob's and the other provider's alice", got)
	}
	if n, err := s.DeleteSubject(ctx, "", "nobody"); n != 0 || err != nil {
		t.Errorf("DeleteSubject(nobody) = %d, %v; want 0, nil", n, err)
	}
	// The index sets of deleted sessions are gone.
	for _, k := range []string{prefix + "u::alice", prefix + "sid::s1", prefix + "sid::s2"} {
		if c.Exists(ctx, k).Val() != 0 {
			t.Errorf("index %s still exists, want it removed with its sessions", k)
		}
	}
	// Index sets expire with their last session.
	if ttl := c.PTTL(ctx, prefix+"u::bob").Val(); ttl < 59*time.Minute || ttl > time.Hour {
		t.Errorf("index u::bob TTL = %v, want about 1h", ttl)
	}
}

func TestLockRefresh(t *testing.T) { onEachTopology(t, testLockRefresh) }

func testLockRefresh(t *testing.T, tp topology) {
	s, _, _ := newStore(t, tp)
	ctx := context.Background()
	id := newID()
	unlock, err := s.LockRefresh(ctx, id, time.Second)
	if err != nil {
		t.Fatalf("LockRefresh: %v", err)
	}
	// Held: another holder waits, and gives up after its ttl.
	start := time.Now()
	if _, err := s.LockRefresh(ctx, id, 150*time.Millisecond); err == nil {
		t.Fatal("LockRefresh of a held lock: nil error, want one after its ttl")
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("LockRefresh of a held lock gave up after %v, want about its ttl", d)
	}
	// Released: a waiter gets it.
	got := make(chan error, 1)
	go func() {
		unlock2, err := s.LockRefresh(ctx, id, 5*time.Second)
		if err == nil {
			unlock2()
		}
		got <- err
	}()
	time.Sleep(30 * time.Millisecond)
	unlock()
	if err := <-got; err != nil {
		t.Errorf("LockRefresh while the holder unlocks: %v, want the lock", err)
	}
	// A cancelled wait ends at once.
	unlock, _ = s.LockRefresh(ctx, id, time.Minute)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.LockRefresh(cctx, id, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("LockRefresh with a cancelled context: %v, want context.DeadlineExceeded", err)
	}
	unlock()
}

// TestLockExpires: a holder that dies frees the lock after its ttl, and
// its late unlock does not release the next holder's lock.
func TestLockExpires(t *testing.T) { onEachTopology(t, testLockExpires) }

func testLockExpires(t *testing.T, tp topology) {
	s, _, _ := newStore(t, tp)
	ctx := context.Background()
	id := newID()
	late, err := s.LockRefresh(ctx, id, 100*time.Millisecond)
	if err != nil {
		t.Fatalf("LockRefresh: %v", err)
	}
	unlock, err := s.LockRefresh(ctx, id, 5*time.Second)
	if err != nil {
		t.Fatalf("LockRefresh after the first holder's ttl: %v", err)
	}
	late() // the first holder wakes up
	if _, err := s.LockRefresh(ctx, id, 100*time.Millisecond); err == nil {
		t.Error("LockRefresh after a stale unlock: got the lock, want it still held by the second holder")
	}
	unlock()
}

func TestLockExcludes(t *testing.T) { onEachTopology(t, testLockExcludes) }

func testLockExcludes(t *testing.T, tp topology) {
	s, _, _ := newStore(t, tp)
	id := newID()
	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			unlock, err := s.LockRefresh(context.Background(), id, 5*time.Second)
			if err != nil {
				t.Errorf("LockRefresh: %v", err)
				return
			}
			n := inside.Add(1)
			if n > maxInside.Load() {
				maxInside.Store(n)
			}
			time.Sleep(5 * time.Millisecond)
			inside.Add(-1)
			unlock()
		})
	}
	wg.Wait()
	if got := maxInside.Load(); got != 1 {
		t.Errorf("holders of one lock at once = %d, want 1", got)
	}
}

func TestClaimTokenID(t *testing.T) { onEachTopology(t, testClaimTokenID) }

func testClaimTokenID(t *testing.T, tp topology) {
	s, c, prefix := newStore(t, tp)
	ctx := context.Background()
	expiry := time.Now().Add(time.Minute)
	for i, want := range []bool{true, false} {
		if first, err := s.ClaimTokenID(ctx, "k1", expiry); first != want || err != nil {
			t.Errorf("ClaimTokenID #%d = %v, %v; want %v, nil", i+1, first, err, want)
		}
	}
	if ttl := c.PTTL(ctx, prefix+"jti:k1").Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("token ID TTL = %v, want at most 1m", ttl)
	}
	if err := s.ReleaseTokenID(ctx, "k1"); err != nil {
		t.Fatalf("ReleaseTokenID: %v", err)
	}
	if first, err := s.ClaimTokenID(ctx, "k1", expiry); !first || err != nil {
		t.Errorf("ClaimTokenID after ReleaseTokenID = %v, %v; want true, nil", first, err)
	}
}

func TestRedisUnreachable(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialerRetries: 1, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	s := redisstore.New(c, redisstore.Options{})
	ctx := context.Background()
	if _, found, err := s.Load(ctx, newID()); err == nil || found {
		t.Errorf("Load with Redis unreachable: found %v, %v; want an error", found, err)
	}
	if err := s.Save(ctx, newID(), []byte("x"), info("alice", "")); err == nil {
		t.Error("Save with Redis unreachable: nil error, want one")
	}
	if _, err := s.DeleteSubject(ctx, "", "alice"); err == nil {
		t.Error("DeleteSubject with Redis unreachable: nil error, want one")
	}
	if _, err := s.LockRefresh(ctx, newID(), time.Second); err == nil {
		t.Error("LockRefresh with Redis unreachable: nil error, want one")
	}
}

func TestNewPanicsOnBraces(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New with Prefix \"a{b}\": no panic, want one")
		}
	}()
	redisstore.New(nil, redisstore.Options{Prefix: "a{b}"})
}
