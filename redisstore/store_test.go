package redisstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"syscall"
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
	wantOnlyTombstones(t, c, prefix, "Delete")
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

// TestSaveIndexUnreachable: Save writes the session first, so that it
// succeeds when the user's or the provider session's index (another key,
// on another Cluster node) cannot be written; the index is written later,
// and then DeleteSubject and DeleteSID find the session.
func TestSaveIndexUnreachable(t *testing.T) { onEachTopology(t, testSaveIndexUnreachable) }

func testSaveIndexUnreachable(t *testing.T, tp topology) {
	s, c, prefix := newStore(t, tp)
	ctx := context.Background()
	f := addFaults(c)
	f.setCut(func(arg string) bool {
		return strings.HasPrefix(arg, prefix+"u:") || strings.HasPrefix(arg, prefix+"sid:")
	})
	alice, bob := newID(), newID()
	for id, inf := range map[string]auth.SessionInfo{alice: info("alice", "s1"), bob: info("bob", "s2")} {
		if err := s.Save(ctx, id, []byte(inf.Subject), inf); err != nil {
			t.Fatalf("Save with the index unreachable: %v, want nil: the session itself is stored", err)
		}
		if data, found, err := s.Load(ctx, id); string(data) != inf.Subject || !found || err != nil {
			t.Fatalf("Load after Save with the index unreachable = %q, %v, %v; want %q", data, found, err, inf.Subject)
		}
	}
	// A session whose own key cannot be written is not saved.
	f.setCut(func(arg string) bool { return strings.Contains(arg, "{") })
	if err := s.Save(ctx, newID(), []byte("x"), info("carol", "")); err == nil {
		t.Error("Save with the session's own key unreachable: nil error, want one")
	}
	f.setCut(nil)
	deleted := func(name string, del func() (int, error)) {
		t.Helper()
		var n int
		var err error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if n, err = del(); n == 1 {
				return
			}
		}
		t.Errorf("%s once the index is back = %d, %v; want 1 within 5s", name, n, err)
	}
	deleted("DeleteSubject(alice)", func() (int, error) { return s.DeleteSubject(ctx, "", "alice") })
	deleted("DeleteSID(s2)", func() (int, error) { return s.DeleteSID(ctx, "", "s2") })
	for _, id := range []string{alice, bob} {
		if _, found, _ := s.Load(ctx, id); found {
			t.Errorf("Load after DeleteSubject/DeleteSID: found, want the session deleted")
		}
	}
}

// mustLock takes id's refresh lock through l with ttl, or fails the test;
// when says when, in the message.
func mustLock(t *testing.T, ctx context.Context, l auth.RefreshLocker, id string, ttl time.Duration, when string) (unlock func()) {
	t.Helper()
	unlock, err := l.LockRefresh(ctx, id, ttl)
	if err != nil {
		t.Fatalf("LockRefresh%s: %v", when, err)
	}
	return unlock
}

func TestLockRefresh(t *testing.T) { onEachTopology(t, testLockRefresh) }

func testLockRefresh(t *testing.T, tp topology) {
	s, _, _ := newStore(t, tp)
	ctx := context.Background()
	id := newID()
	unlock := mustLock(t, ctx, s, id, time.Second, "")
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

// TestLockHolderDies: a holder whose process dies (its client is gone)
// blocks the session for at most the lock's ttl.
func TestLockHolderDies(t *testing.T) { onEachTopology(t, testLockHolderDies) }

func testLockHolderDies(t *testing.T, tp topology) {
	s, _, prefix := newStore(t, tp)
	ctx := context.Background()
	id := newID()
	dead := tp.client(t)
	mustLock(t, ctx, redisstore.New(dead, redisstore.Options{Prefix: prefix}), id, 300*time.Millisecond, "")
	dead.Close() // the process dies without unlocking
	start := time.Now()
	defer mustLock(t, ctx, s, id, 5*time.Second, " after the holder died")()
	if d := time.Since(start); d > time.Second {
		t.Errorf("LockRefresh after the holder died waited %v, want at most about its ttl (300ms)", d)
	}
}

// TestLockRenewed: a live holder keeps the lock however long it holds it,
// past its ttl, and unlocking frees it at once.
func TestLockRenewed(t *testing.T) { onEachTopology(t, testLockRenewed) }

func testLockRenewed(t *testing.T, tp topology) {
	s, _, _ := newStore(t, tp)
	ctx := context.Background()
	id := newID()
	const ttl = 200 * time.Millisecond
	unlock := mustLock(t, ctx, s, id, ttl, "")
	for deadline := time.Now().Add(5 * ttl); time.Now().Before(deadline); {
		// Each try waits for at most its own ttl.
		if unlock2, err := s.LockRefresh(ctx, id, ttl/2); err == nil {
			unlock2()
			unlock()
			t.Fatalf("LockRefresh got a lock whose holder is alive, %v after it was taken with ttl %v", 5*ttl-time.Until(deadline), ttl)
		}
	}
	unlock()
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	start := time.Now()
	mustLock(t, cctx, s, id, ttl, " after unlock")()
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("LockRefresh after unlock took %v, want it at once", d)
	}
}

// TestLockLostWhileCutOff: a holder cut off from Redis for longer than
// the ttl loses the lock to the next; when it is back, neither its renewal
// nor its late unlock takes the lock from the new holder.
func TestLockLostWhileCutOff(t *testing.T) { onEachTopology(t, testLockLostWhileCutOff) }

func testLockLostWhileCutOff(t *testing.T, tp topology) {
	s, _, prefix := newStore(t, tp)
	ctx := context.Background()
	id := newID()
	c1 := tp.client(t)
	f := addFaults(c1)
	const ttl = 300 * time.Millisecond
	late := mustLock(t, ctx, redisstore.New(c1, redisstore.Options{Prefix: prefix}), id, ttl, "")
	f.setCut(func(string) bool { return true })
	defer mustLock(t, ctx, s, id, 5*time.Second, " while the holder is cut off (want it after its ttl)")()
	f.setCut(nil)
	time.Sleep(ttl) // the first holder's renewals run again
	late()
	if unlock3, err := s.LockRefresh(ctx, id, ttl); err == nil {
		unlock3()
		t.Error("LockRefresh after the cut-off holder came back and unlocked: got the lock, want it still held by the second holder")
	}
}

// TestLockRefreshHonoursContext: LockRefresh returns when its context
// ends, even when Redis does not answer at all (the client's own
// timeouts are seconds).
func TestLockRefreshHonoursContext(t *testing.T) {
	srv := startRedis(t)
	client := redis.NewClient(&redis.Options{Addr: srv.addr()})
	t.Cleanup(func() { client.Close() })
	s := redisstore.New(client, redisstore.Options{})
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	srv.cmd.Process.Signal(syscall.SIGSTOP) // connections open, no answers
	t.Cleanup(func() { srv.cmd.Process.Signal(syscall.SIGCONT) })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.LockRefresh(ctx, newID(), 5*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("LockRefresh with Redis not answering: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("LockRefresh with Redis not answering returned after %v, want about its context's 200ms", d)
	}
}

// TestLockWaitIsGentle: a process waiting for a held lock asks Redis a
// few times a second, not in a tight loop.
func TestLockWaitIsGentle(t *testing.T) { onEachTopology(t, testLockWaitIsGentle) }

func testLockWaitIsGentle(t *testing.T, tp topology) {
	s, _, prefix := newStore(t, tp)
	ctx := context.Background()
	id := newID()
	defer mustLock(t, ctx, s, id, 5*time.Second, "")()
	c2 := tp.client(t)
	f := addFaults(c2)
	f.setWatch(func(arg string) bool { return strings.Contains(arg, id) })
	const wait = time.Second
	if _, err := redisstore.New(c2, redisstore.Options{Prefix: prefix}).LockRefresh(ctx, id, wait); err == nil {
		t.Fatal("LockRefresh of a held lock: got it")
	}
	if n := f.counted(); n > 30 {
		t.Errorf("waiting %v for a held lock sent %d commands, want at most 30", wait, n)
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
