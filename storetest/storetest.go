// Package storetest checks that an [auth.Store] keeps the contract the
// middleware relies on, in the manner of [testing/fstest.TestFS]. Call
// [Run] from a test of the package that implements the Store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) auth.Store {
//			return mystore.New(connect(t))
//		})
//	}
//
// and, to check also how the store fails and how its instances share a
// backend, fill in [Options]:
//
//	storetest.Options{
//		NewStore:    newStore,
//		Unreachable: func(t *testing.T) auth.Store { return mystore.New(connectTo(t, "127.0.0.1:1")) },
//	}.Run(t)
//
// The suite checks the methods of [auth.Store], and those of
// [auth.SubjectDeleter], [auth.SIDDeleter], [auth.ReplayGuard] and
// [auth.RefreshLocker] when the store implements them:
//
//   - Save, Load and Delete: Load of an unknown ID finds nothing with a
//     nil error, Delete of one is no error, a Save replaces the data, and
//     the data (binary, up to 64 KiB) comes back as saved, in a slice the
//     caller owns, from a store that kept no reference to the caller's.
//   - Expiry: a session is not found once its SessionInfo.Expiry has
//     passed, whether already at its Save or a second later.
//   - Deletion is final: a Save of a deleted session (by Delete,
//     DeleteSubject or DeleteSID), even one racing with the deletion,
//     fails with an error wrapping [auth.ErrSessionEnded] and does not
//     bring it back. This is what lets a logout win over a refresh that
//     loaded the session just before it. (The suite saves right after
//     the deletion; a store need only remember a deleted ID for as long
//     as a refresh can take: redisstore and [auth.MemoryStore] do for
//     two minutes.)
//   - DeleteSubject and DeleteSID delete exactly the sessions of that
//     provider and user or provider session, and count them.
//   - ClaimTokenID says true once per key until the key expires or is
//     released.
//   - LockRefresh excludes other holders of the same ID (and only of that
//     ID) until unlock, even past its ttl while the holder lives; a waiter
//     gets the lock when it is released, and returns with an error
//     promptly when its context ends; unlock can be called twice.
//   - Many goroutines saving, loading and deleting at once (run the
//     suite with -race).
//   - With [Options.Unreachable]: every method returns an error when the
//     backend cannot be reached, never "not found" (which would sign
//     users out) nor "first claim" (which would accept a replayed logout
//     token).
//   - With [Options.Peer]: two instances of the store sharing a backend
//     see each other's sessions, deletions, claims and locks, and a lock
//     whose holder died frees itself after its ttl.
//
// Session IDs are random 43-character base64url strings, as the
// middleware makes them; IDs, users and token IDs are random in each
// check, so the stores that NewStore returns may share one backend. The
// checks that wait for time to pass (about a second each) run in parallel
// with each other; Run returns when every check is done. A failure names
// the call, what it returned and what the contract wants.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/auth"
)

// Options configures the suite that [Options.Run] runs.
type Options struct {
	// NewStore returns the store for one check. It may call t.Cleanup to
	// close it. Required.
	NewStore func(t *testing.T) auth.Store
	// Unreachable, if set, returns a store whose backend cannot be
	// reached (say a client of a server address where nothing listens).
	// Every method must then return an error, within ten seconds. Unset,
	// those checks are skipped.
	Unreachable func(t *testing.T) auth.Store
	// Peer, if set, returns a second instance of s on the same backend,
	// as another process of the application would have it (for Redis: a
	// store on a client of its own, with the same key prefix), and a
	// function that kills that instance as a crash would: it cuts it off
	// from the backend and stops its background work. Unset (for a store
	// that lives in one process, such as [auth.MemoryStore]), those checks
	// are skipped. The suite calls the dead instance's unlock functions at
	// the end, so that it can free what it holds.
	Peer func(t *testing.T, s auth.Store) (peer auth.Store, kill func())
}

// Run runs the suite against the stores that newStore returns, one per
// check. It is Options{NewStore: newStore}.Run(t).
func Run(t *testing.T, newStore func(t *testing.T) auth.Store) {
	t.Helper()
	Options{NewStore: newStore}.Run(t)
}

// Run runs the suite as a subtest "storetest" of t, with a subtest per
// check; it returns when they are all done.
func (o Options) Run(t *testing.T) {
	t.Helper()
	if o.NewStore == nil {
		t.Fatal("storetest: Options.NewStore is nil")
	}
	t.Run("storetest", func(t *testing.T) {
		c := &checker{o: o}
		t.Run("SaveLoad", c.saveLoad)
		t.Run("LoadUnknown", c.loadUnknown)
		t.Run("Delete", c.delete)
		t.Run("Overwrite", c.overwrite)
		t.Run("Copies", c.copies)
		t.Run("LargeValue", c.largeValue)
		t.Run("ExpiryPast", c.expiryPast)
		t.Run("ExpiryShort", c.expiryShort)
		t.Run("SaveAfterDelete", c.saveAfterDelete)
		t.Run("SaveRacingDelete", c.saveRacingDelete)
		t.Run("SubjectDeleter", c.subjectDeleter)
		t.Run("SIDDeleter", c.sidDeleter)
		t.Run("ReplayGuard", c.replayGuard)
		t.Run("ReplayGuardExpiry", c.replayGuardExpiry)
		t.Run("RefreshLocker", c.refreshLocker)
		t.Run("Concurrency", c.concurrency)
		t.Run("Unreachable", c.unreachable)
		t.Run("Peer", c.peer)
	})
}

type checker struct{ o Options }

// store returns a new store for t.
func (c *checker) store(t *testing.T) auth.Store {
	t.Helper()
	s := c.o.NewStore(t)
	if s == nil {
		t.Fatal("storetest: NewStore returned nil")
	}
	return s
}

// NewID returns a session ID as the middleware makes them: 32 random
// bytes in unpadded base64url, 43 characters.
func NewID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// unique returns name with a random suffix, so that checks sharing a
// backend do not meet.
func unique(name string) string { return name + "-" + rand.Text()[:12] }

// randomData returns n random bytes.
func randomData(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// info is the SessionInfo of a session of sub (with sid) by provider that
// ends in an hour.
func info(provider, sub, sid string) auth.SessionInfo {
	return auth.SessionInfo{Provider: provider, Subject: sub, SID: sid, Expiry: time.Now().Add(time.Hour)}
}

// short names an ID in messages.
func short(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}

// show describes data in messages without printing kilobytes of it.
func show(b []byte) string {
	if b == nil {
		return "nil"
	}
	if len(b) <= 24 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%d bytes %q…", len(b), b[:16])
}

func save(t *testing.T, s auth.Store, id string, data []byte, i auth.SessionInfo) {
	t.Helper()
	if err := s.Save(t.Context(), id, data, i); err != nil {
		t.Fatalf("Save(%s, %s): %v; want nil", short(id), show(data), err)
	}
}

// wantFound checks that Load(id) returns data.
func wantFound(t *testing.T, s auth.Store, id string, data []byte, after string) {
	t.Helper()
	got, found, err := s.Load(t.Context(), id)
	if err != nil || !found || !bytes.Equal(got, data) {
		t.Errorf("Load(%s) %s = %s, %v, %v; want %s, true, nil", short(id), after, show(got), found, err, show(data))
	}
}

// wantGone checks that Load(id) finds nothing, with no error.
func wantGone(t *testing.T, s auth.Store, id, after string) {
	t.Helper()
	got, found, err := s.Load(t.Context(), id)
	if err != nil || found {
		t.Errorf("Load(%s) %s = %s, %v, %v; want not found: _, false, nil", short(id), after, show(got), found, err)
	}
}

// poll calls f every 20 ms until it returns true, for at most within, and
// reports whether it did.
func poll(within time.Duration, f func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *checker) saveLoad(t *testing.T) {
	s := c.store(t)
	id1, id2 := NewID(), NewID()
	d1, d2 := randomData(100), randomData(2000)
	save(t, s, id1, d1, info("storetest", unique("alice"), ""))
	save(t, s, id2, d2, info("storetest", unique("bob"), unique("sid")))
	wantFound(t, s, id1, d1, "after Save")
	wantFound(t, s, id2, d2, "after Save")
}

func (c *checker) loadUnknown(t *testing.T) {
	s := c.store(t)
	wantGone(t, s, NewID(), "of an ID never saved")
	wantGone(t, s, "not-a-session-id", "of a malformed ID")
}

func (c *checker) delete(t *testing.T) {
	s := c.store(t)
	ctx := t.Context()
	if err := s.Delete(ctx, NewID()); err != nil {
		t.Errorf("Delete of an ID never saved: %v; want nil", err)
	}
	id, other := NewID(), NewID()
	sub := unique("alice")
	save(t, s, id, []byte("v1"), info("storetest", sub, ""))
	save(t, s, other, []byte("v2"), info("storetest", sub, ""))
	if err := s.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v; want nil", err)
	}
	wantGone(t, s, id, "after Delete")
	wantFound(t, s, other, []byte("v2"), "after Delete of another session of the same user")
	if err := s.Delete(ctx, id); err != nil {
		t.Errorf("Delete a second time: %v; want nil", err)
	}
}

func (c *checker) overwrite(t *testing.T) {
	s := c.store(t)
	id := NewID()
	i := info("storetest", unique("alice"), "")
	save(t, s, id, []byte("first"), i)
	save(t, s, id, []byte("second, longer"), i)
	wantFound(t, s, id, []byte("second, longer"), "after a second Save")
	save(t, s, id, []byte("3rd"), i)
	wantFound(t, s, id, []byte("3rd"), "after a third, shorter Save")
}

func (c *checker) copies(t *testing.T) {
	s := c.store(t)
	id := NewID()
	data := []byte("original data")
	save(t, s, id, data, info("storetest", unique("alice"), ""))
	copy(data, "CHANGED")
	wantFound(t, s, id, []byte("original data"), "after the caller changed the slice it saved")

	got, _, err := s.Load(t.Context(), id)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	copy(got, "CHANGED")
	wantFound(t, s, id, []byte("original data"), "after the caller changed the slice a Load returned")
}

func (c *checker) largeValue(t *testing.T) {
	s := c.store(t)
	id := NewID()
	data := randomData(64 << 10)
	for i := range 256 {
		data[i] = byte(i) // every byte value, NUL included
	}
	save(t, s, id, data, info("storetest", unique("alice"), unique("sid")))
	wantFound(t, s, id, data, "of a 64 KiB session")
}

func (c *checker) expiryPast(t *testing.T) {
	s := c.store(t)
	i := info("storetest", unique("alice"), "")
	i.Expiry = time.Now().Add(-time.Minute)

	id := NewID()
	if err := s.Save(t.Context(), id, []byte("expired"), i); err != nil {
		t.Fatalf("Save with Expiry a minute ago: %v; want nil", err)
	}
	wantGone(t, s, id, "after Save with Expiry a minute ago")

	id = NewID()
	save(t, s, id, []byte("live"), info("storetest", i.Subject, ""))
	if err := s.Save(t.Context(), id, []byte("expired"), i); err != nil {
		t.Fatalf("Save with Expiry a minute ago, over a live session: %v; want nil", err)
	}
	wantGone(t, s, id, "after a Save with Expiry a minute ago replaced it")
}

func (c *checker) expiryShort(t *testing.T) {
	t.Parallel()
	s := c.store(t)
	id := NewID()
	start := time.Now()
	i := info("storetest", unique("alice"), "")
	i.Expiry = start.Add(time.Second)
	save(t, s, id, []byte("short"), i)
	wantFound(t, s, id, []byte("short"), "right after Save with Expiry in 1s")
	var err error
	gone := poll(3*time.Second, func() bool {
		var found bool
		_, found, err = s.Load(t.Context(), id)
		return !found || err != nil
	})
	switch {
	case err != nil:
		t.Errorf("Load after Expiry: %v; want _, false, nil", err)
	case !gone:
		t.Errorf("Load(%s) %v after Save with Expiry in 1s: found; want not found after its Expiry", short(id), time.Since(start).Round(time.Millisecond))
	}
}

func (c *checker) saveAfterDelete(t *testing.T) {
	s := c.store(t)
	ctx := t.Context()
	id := NewID()
	i := info("storetest", unique("alice"), unique("sid"))
	save(t, s, id, []byte("v1"), i)
	if err := s.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.Save(ctx, id, []byte("v2"), i); !errors.Is(err, auth.ErrSessionEnded) {
		t.Errorf("Save after Delete: %v; want an error wrapping auth.ErrSessionEnded (a refresh must not bring back a session logged out)", err)
	}
	wantGone(t, s, id, "after Save after Delete")
}

// saveRacingDelete: goroutines save a session over and over (as refreshes
// would) while it is deleted. Once the deletion has returned, every Save
// must fail with ErrSessionEnded, and the session must stay deleted.
func (c *checker) saveRacingDelete(t *testing.T) {
	t.Run("Delete", func(t *testing.T) {
		s := c.store(t)
		c.raceDeletion(t, s, 1, func(ctx context.Context, ids []string, _ auth.SessionInfo) (int, error) {
			return -1, s.Delete(ctx, ids[0])
		})
	})
	t.Run("DeleteSubject", func(t *testing.T) {
		s := c.store(t)
		d := implements[auth.SubjectDeleter](t, s)
		c.raceDeletion(t, s, 3, func(ctx context.Context, _ []string, i auth.SessionInfo) (int, error) {
			return d.DeleteSubject(ctx, i.Provider, i.Subject)
		})
	})
	t.Run("DeleteSID", func(t *testing.T) {
		s := c.store(t)
		d := implements[auth.SIDDeleter](t, s)
		c.raceDeletion(t, s, 3, func(ctx context.Context, _ []string, i auth.SessionInfo) (int, error) {
			return d.DeleteSID(ctx, i.Provider, i.SID)
		})
	})
}

// raceDeletion saves n sessions of one user and provider session, then
// deletes them with del while goroutines save them again and again. del
// returns how many it deleted, or -1 if it does not count.
func (c *checker) raceDeletion(t *testing.T, s auth.Store, n int, del func(context.Context, []string, auth.SessionInfo) (int, error)) {
	ctx := t.Context()
	i := info("storetest", unique("alice"), unique("sid"))
	ids := make([]string, n)
	for k := range ids {
		ids[k] = NewID()
		save(t, s, ids[k], []byte("v0"), i)
	}
	var deleted atomic.Bool // set once del has returned
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			id := ids[g%n]
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				after := deleted.Load()
				err := s.Save(ctx, id, fmt.Appendf(nil, "v%d.%d", g, k), i)
				switch {
				case err == nil && after:
					t.Errorf("Save(%s) after the deletion had returned: nil; want an error wrapping auth.ErrSessionEnded", short(id))
					return
				case err != nil && !errors.Is(err, auth.ErrSessionEnded):
					t.Errorf("Save(%s) racing a deletion: %v; want nil or an error wrapping auth.ErrSessionEnded", short(id), err)
					return
				}
			}
		})
	}
	time.Sleep(10 * time.Millisecond) // let the saves start
	got, err := del(ctx, ids, i)
	deleted.Store(true)
	time.Sleep(10 * time.Millisecond) // saves after the deletion
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("deletion racing saves: %v", err)
	}
	if got >= 0 && got != n {
		t.Errorf("deletion racing saves of %d existing sessions = %d; want %d", n, got, n)
	}
	for _, id := range ids {
		wantGone(t, s, id, "after a deletion that raced saves")
	}
}

func (c *checker) subjectDeleter(t *testing.T) {
	s := c.store(t)
	d := implements[auth.SubjectDeleter](t, s)
	ctx := t.Context()
	alice, bob := unique("alice"), unique("bob")
	checkDeletion(t, s, "DeleteSubject", "p, alice", func() (int, error) { return d.DeleteSubject(ctx, "p", alice) }, []deletion{
		{NewID(), info("p", alice, ""), true},
		{NewID(), info("p", alice, unique("sid")), true},
		{NewID(), info("p", bob, ""), false},
		{NewID(), info("q", alice, ""), false},     // same sub, other provider
		{NewID(), info("", alice, ""), false},      // the default provider
		{NewID(), info("p", alice+"x", ""), false}, // a sub that alice's is a prefix of
		{NewID(), info("p", bob, alice), false},    // alice's sub as a sid
		{NewID(), info("p", alice[:5], ""), false}, // a prefix of alice's sub
	})
	if n, err := d.DeleteSubject(ctx, "p", unique("nobody")); err != nil || n != 0 {
		t.Errorf("DeleteSubject of a user with no session = %d, %v; want 0, nil", n, err)
	}
	// A new session of the same user, after the deletion, is not touched.
	id := NewID()
	save(t, s, id, []byte("new"), info("p", alice, ""))
	wantFound(t, s, id, []byte("new"), "of a new session of alice after DeleteSubject")
}

func (c *checker) sidDeleter(t *testing.T) {
	s := c.store(t)
	d := implements[auth.SIDDeleter](t, s)
	ctx := t.Context()
	alice, bob, sid, other := unique("alice"), unique("bob"), unique("sid"), unique("sid")
	checkDeletion(t, s, "DeleteSID", "p, sid", func() (int, error) { return d.DeleteSID(ctx, "p", sid) }, []deletion{
		{NewID(), info("p", alice, sid), true},
		{NewID(), info("p", bob, sid), true}, // a sid names sessions whatever their sub
		{NewID(), info("p", alice, other), false},
		{NewID(), info("p", alice, ""), false},
		{NewID(), info("q", alice, sid), false}, // same sid, other provider
		{NewID(), info("p", sid, ""), false},    // the sid as a sub
	})
}

// implements returns s as an I, or skips the test if s is not one.
func implements[I any](t *testing.T, s auth.Store) I {
	t.Helper()
	i, ok := s.(I)
	if !ok {
		t.Skipf("%T does not implement %v", s, reflect.TypeFor[I]())
	}
	return i
}

// deletion is a session saved before a deletion, and whether the deletion
// must end it.
type deletion struct {
	id   string
	info auth.SessionInfo
	gone bool
}

// checkDeletion saves sessions, then checks that del (a call of method
// with args) deletes exactly those marked gone and says how many, that
// Save cannot bring one of them back, and that del again deletes none.
func checkDeletion(t *testing.T, s auth.Store, method, args string, del func() (int, error), sessions []deletion) {
	t.Helper()
	call := method + "(" + args + ")"
	data := func(x deletion) []byte { return []byte(x.info.Provider + "/" + x.info.Subject + "/" + x.info.SID) }
	want := 0
	for _, x := range sessions {
		save(t, s, x.id, data(x), x.info)
		if x.gone {
			want++
		}
	}
	n, err := del()
	if err != nil || n != want {
		t.Errorf("%s = %d, %v; want %d, nil", call, n, err, want)
	}
	for _, x := range sessions {
		which := fmt.Sprintf("of provider %q sub %q sid %q after %s", x.info.Provider, x.info.Subject, x.info.SID, call)
		if !x.gone {
			wantFound(t, s, x.id, data(x), which)
			continue
		}
		wantGone(t, s, x.id, which)
		if err := s.Save(t.Context(), x.id, []byte("back"), x.info); !errors.Is(err, auth.ErrSessionEnded) {
			t.Errorf("Save of a session %s deleted: %v; want an error wrapping auth.ErrSessionEnded", method, err)
		}
		wantGone(t, s, x.id, "after "+call+" then Save")
	}
	if n, err := del(); err != nil || n != 0 {
		t.Errorf("%s a second time = %d, %v; want 0, nil", call, n, err)
	}
}

func (c *checker) replayGuard(t *testing.T) {
	s := c.store(t)
	g := implements[auth.ReplayGuard](t, s)
	ctx := t.Context()
	k1, k2 := unique("jti"), unique("jti")
	expiry := time.Now().Add(time.Minute)
	claim := func(key string, want bool, when string) {
		t.Helper()
		if first, err := g.ClaimTokenID(ctx, key, expiry); first != want || err != nil {
			t.Errorf("ClaimTokenID %s = %v, %v; want %v, nil", when, first, err, want)
		}
	}
	claim(k1, true, "of a new key")
	claim(k1, false, "of the same key again")
	claim(k2, true, "of another key")
	if err := g.ReleaseTokenID(ctx, k1); err != nil {
		t.Fatalf("ReleaseTokenID: %v; want nil", err)
	}
	claim(k1, true, "after ReleaseTokenID")
	claim(k1, false, "after ReleaseTokenID and a claim")
	claim(k2, false, "of the other key after ReleaseTokenID of the first")
	if err := g.ReleaseTokenID(ctx, unique("jti")); err != nil {
		t.Errorf("ReleaseTokenID of a key never claimed: %v; want nil", err)
	}
}

func (c *checker) replayGuardExpiry(t *testing.T) {
	s := c.store(t)
	g := implements[auth.ReplayGuard](t, s)
	t.Parallel()
	ctx := t.Context()
	key := unique("jti")
	start := time.Now()
	if first, err := g.ClaimTokenID(ctx, key, start.Add(time.Second)); !first || err != nil {
		t.Fatalf("ClaimTokenID until 1s from now = %v, %v; want true, nil", first, err)
	}
	if first, err := g.ClaimTokenID(ctx, key, start.Add(time.Second)); first || err != nil {
		t.Fatalf("ClaimTokenID again = %v, %v; want false, nil", first, err)
	}
	var err error
	if !poll(3*time.Second, func() bool {
		var first bool
		first, err = g.ClaimTokenID(ctx, key, time.Now().Add(time.Minute))
		return first || err != nil
	}) || err != nil {
		t.Errorf("ClaimTokenID %v after a claim until 1s from then: %v; want true, nil once the first claim expired", time.Since(start).Round(time.Millisecond), err)
	}
}

func (c *checker) refreshLocker(t *testing.T) {
	s := c.store(t)
	l := implements[auth.RefreshLocker](t, s)
	t.Parallel()
	t.Run("Excludes", func(t *testing.T) { lockExcludes(t, l, l) })
	t.Run("WaiterGetsItAfterUnlock", func(t *testing.T) { lockHandover(t, l, l) })
	t.Run("OtherIDsDoNotWait", func(t *testing.T) {
		ctx := t.Context()
		unlock := mustLock(t, l, ctx, NewID(), 5*time.Second)
		defer unlock()
		start := time.Now()
		unlock2 := mustLock(t, l, ctx, NewID(), 5*time.Second)
		unlock2()
		if d := time.Since(start); d > time.Second {
			t.Errorf("LockRefresh of another ID took %v; want no wait", d)
		}
	})
	t.Run("UnlockIdempotent", func(t *testing.T) {
		ctx := t.Context()
		id := NewID()
		unlockA := mustLock(t, l, ctx, id, 5*time.Second)
		unlockA()
		unlockA()
		unlockB := mustLock(t, l, ctx, id, 5*time.Second)
		defer unlockB()
		unlockA() // late: must leave B's lock alone
		wantLocked(t, l, id, "after the previous holder called its unlock again")
	})
	t.Run("ContextEnds", func(t *testing.T) {
		ctx := t.Context()
		id := NewID()
		unlock := mustLock(t, l, ctx, id, 5*time.Second)
		defer unlock()
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(100*time.Millisecond, cancel)
		if !lockFails(t, l, cctx, id, 1100*time.Millisecond, "of a held lock, its context canceled after 100ms") {
			return
		}
		dctx, cancel2 := context.WithCancel(ctx)
		cancel2()
		if !lockFails(t, l, dctx, id, time.Second, "of a held lock with a canceled context") {
			return
		}
		unlock()
		// The waiters that gave up left nothing behind.
		start := time.Now()
		mustLock(t, l, ctx, id, 5*time.Second)()
		if d := time.Since(start); d > time.Second {
			t.Errorf("LockRefresh after the waiters gave up and the holder unlocked took %v; want no wait", d)
		}
	})
	t.Run("HeldPastTTL", func(t *testing.T) {
		id := NewID()
		unlock := mustLock(t, l, t.Context(), id, 200*time.Millisecond)
		time.Sleep(700 * time.Millisecond) // a holder alive, and slow
		wantLocked(t, l, id, "700ms after a live holder took it with ttl 200ms")
		unlock()
		mustLock(t, l, t.Context(), id, 5*time.Second)()
	})
}

// mustLock takes the lock, within 5 s.
func mustLock(t *testing.T, l auth.RefreshLocker, ctx context.Context, id string, ttl time.Duration) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	unlock, err := l.LockRefresh(ctx, id, ttl)
	if err != nil {
		t.Fatalf("LockRefresh(%s, %v): %v; want the lock", short(id), ttl, err)
	}
	if unlock == nil {
		t.Fatalf("LockRefresh(%s, %v): nil unlock function, nil error; want an unlock function", short(id), ttl)
	}
	return unlock
}

// lockFails checks that LockRefresh(ctx, id) returns an error within
// the given time, and reports whether it did.
func lockFails(t *testing.T, l auth.RefreshLocker, ctx context.Context, id string, within time.Duration, what string) bool {
	t.Helper()
	type result struct {
		unlock func()
		err    error
	}
	done := make(chan result, 1)
	go func() {
		u, err := l.LockRefresh(ctx, id, 10*time.Second)
		done <- result{u, err}
	}()
	select {
	case r := <-done:
		if r.err == nil {
			r.unlock()
			t.Errorf("LockRefresh %s: got the lock; want an error", what)
			return false
		}
		return true
	case <-time.After(within):
		t.Errorf("LockRefresh %s: no answer after %v; want an error promptly", what, within)
		return false
	}
}

// wantLocked checks that someone holds the lock of id: LockRefresh with a
// context that ends in 100 ms does not get it.
func wantLocked(t *testing.T, l auth.RefreshLocker, id, when string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if u, err := l.LockRefresh(ctx, id, 5*time.Second); err == nil {
		u()
		t.Errorf("LockRefresh %s: got the lock; want it held by the holder", when)
	}
}

// lockExcludes: goroutines taking the lock of one ID, half through a and
// half through b, are never inside at the same time.
func lockExcludes(t *testing.T, a, b auth.RefreshLocker) {
	id := NewID()
	var inside, most atomic.Int32 // most: the most holders inside at once, if over 1
	var wg sync.WaitGroup
	for g := range 6 {
		l := a
		if g%2 == 1 {
			l = b
		}
		wg.Go(func() {
			for range 3 {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				unlock, err := l.LockRefresh(ctx, id, 10*time.Second)
				cancel()
				if err != nil {
					t.Errorf("LockRefresh with other goroutines waiting: %v; want the lock", err)
					return
				}
				if n := inside.Add(1); n > 1 {
					most.Store(n)
				}
				time.Sleep(2 * time.Millisecond)
				inside.Add(-1)
				unlock()
			}
		})
	}
	wg.Wait()
	if got := most.Load(); got > 1 {
		t.Errorf("holders of one lock at once = %d; want 1", got)
	}
}

// lockHandover: a waiter (through b) waits while the holder (through a)
// has the lock, and gets it promptly once the holder unlocks.
func lockHandover(t *testing.T, a, b auth.RefreshLocker) {
	id := NewID()
	unlock := mustLock(t, a, t.Context(), id, 5*time.Second)
	type result struct {
		unlock func()
		err    error
		at     time.Time
	}
	got := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		u, err := b.LockRefresh(ctx, id, 5*time.Second)
		got <- result{u, err, time.Now()}
	}()
	select {
	case r := <-got:
		if r.err == nil {
			r.unlock()
		}
		unlock()
		t.Fatalf("LockRefresh of a held lock returned %v within 200ms; want it to wait for the holder", r.err)
	case <-time.After(200 * time.Millisecond):
	}
	released := time.Now()
	unlock()
	r := <-got
	if r.err != nil {
		t.Fatalf("LockRefresh waiting for a holder that unlocked: %v; want the lock", r.err)
	}
	r.unlock()
	if d := r.at.Sub(released); d > time.Second {
		t.Errorf("LockRefresh waiting for a holder got the lock %v after the unlock; want promptly", d)
	}
}

func (c *checker) concurrency(t *testing.T) {
	s := c.store(t)
	sd, _ := s.(auth.SubjectDeleter)
	ctx := t.Context()
	shared := []string{NewID(), NewID(), NewID()}
	sharedInfo := info("storetest", unique("shared"), unique("sid"))
	valid := func(b []byte) bool { return bytes.HasPrefix(b, []byte("g")) }
	const goroutines = 8
	own := make([]string, goroutines)
	last := make([][]byte, goroutines) // the data of own[g] at the end
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range goroutines {
		own[g] = NewID()
		ownInfo := info("storetest", unique("own"), "")
		wg.Go(func() {
			<-start
			for k := range 30 {
				v := fmt.Appendf(nil, "g%d.%d", g, k)
				if err := s.Save(ctx, own[g], v, ownInfo); err != nil {
					t.Errorf("Save of a goroutine's own session: %v; want nil", err)
					return
				}
				last[g] = v
				runtime.Gosched()
				if got, found, err := s.Load(ctx, own[g]); err != nil || !found || !bytes.Equal(got, v) {
					t.Errorf("Load of a goroutine's own session = %s, %v, %v; want %s, true, nil", show(got), found, err, show(v))
					return
				}
				id := shared[(g+k)%len(shared)]
				switch k % 5 {
				case 0, 1:
					if err := s.Save(ctx, id, v, sharedInfo); err != nil && !errors.Is(err, auth.ErrSessionEnded) {
						t.Errorf("Save of a shared session: %v; want nil or auth.ErrSessionEnded", err)
					}
				case 2, 3:
					if got, found, err := s.Load(ctx, id); err != nil || found && !valid(got) {
						t.Errorf("Load of a shared session = %s, %v, %v; want data some Save wrote", show(got), found, err)
					}
				case 4:
					if g == 0 && sd != nil {
						if _, err := sd.DeleteSubject(ctx, sharedInfo.Provider, sharedInfo.Subject); err != nil {
							t.Errorf("DeleteSubject: %v", err)
						}
					} else if err := s.Delete(ctx, id); err != nil {
						t.Errorf("Delete of a shared session: %v", err)
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for g, id := range own {
		wantFound(t, s, id, last[g], "of a goroutine's own session after all the goroutines are done")
		if err := s.Delete(ctx, id); err != nil {
			t.Errorf("Delete: %v", err)
		}
		wantGone(t, s, id, "of a goroutine's own session after Delete")
	}
}

func (c *checker) unreachable(t *testing.T) {
	if c.o.Unreachable == nil {
		t.Skip("Options.Unreachable is not set")
	}
	s := c.o.Unreachable(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	id := NewID()
	i := info("storetest", unique("alice"), unique("sid"))
	if data, found, err := s.Load(ctx, id); err == nil {
		t.Errorf("Load with the backend unreachable = %s, %v, nil; want an error (not found would sign the user out)", show(data), found)
	}
	if err := s.Save(ctx, id, []byte("x"), i); err == nil {
		t.Error("Save with the backend unreachable: nil; want an error")
	} else if errors.Is(err, auth.ErrSessionEnded) {
		t.Errorf("Save with the backend unreachable: %v; want an error, but not auth.ErrSessionEnded (which ends the session)", err)
	}
	if err := s.Delete(ctx, id); err == nil {
		t.Error("Delete with the backend unreachable: nil; want an error (logout would look done with the session alive)")
	}
	if d, ok := s.(auth.SubjectDeleter); ok {
		if _, err := d.DeleteSubject(ctx, i.Provider, i.Subject); err == nil {
			t.Error("DeleteSubject with the backend unreachable: nil error; want one")
		}
	}
	if d, ok := s.(auth.SIDDeleter); ok {
		if _, err := d.DeleteSID(ctx, i.Provider, i.SID); err == nil {
			t.Error("DeleteSID with the backend unreachable: nil error; want one")
		}
	}
	if g, ok := s.(auth.ReplayGuard); ok {
		if first, err := g.ClaimTokenID(ctx, unique("jti"), time.Now().Add(time.Minute)); err == nil {
			t.Errorf("ClaimTokenID with the backend unreachable = %v, nil; want an error", first)
		}
		if err := g.ReleaseTokenID(ctx, unique("jti")); err == nil {
			t.Error("ReleaseTokenID with the backend unreachable: nil; want an error")
		}
	}
	if l, ok := s.(auth.RefreshLocker); ok {
		if u, err := l.LockRefresh(ctx, id, 5*time.Second); err == nil {
			u()
			t.Error("LockRefresh with the backend unreachable: got the lock; want an error")
		}
	}
	if ctx.Err() != nil {
		t.Error("the calls with the backend unreachable took over 10s; want each to fail promptly")
	}
}

func (c *checker) peer(t *testing.T) {
	if c.o.Peer == nil {
		t.Skip("Options.Peer is not set")
	}
	t.Parallel()
	t.Run("SessionsShared", func(t *testing.T) {
		a := c.store(t)
		b, _ := c.o.Peer(t, a)
		ctx := t.Context()
		id := NewID()
		i := info("storetest", unique("alice"), unique("sid"))
		save(t, a, id, []byte("v1"), i)
		wantFound(t, b, id, []byte("v1"), "on the peer after Save on the first")
		save(t, b, id, []byte("v2"), i)
		wantFound(t, a, id, []byte("v2"), "on the first after Save on the peer")
		if err := b.Delete(ctx, id); err != nil {
			t.Fatalf("Delete on the peer: %v", err)
		}
		wantGone(t, a, id, "on the first after Delete on the peer")
		if err := a.Save(ctx, id, []byte("v3"), i); !errors.Is(err, auth.ErrSessionEnded) {
			t.Errorf("Save on the first after Delete on the peer: %v; want an error wrapping auth.ErrSessionEnded", err)
		}
		if d, ok := b.(auth.SubjectDeleter); ok {
			id := NewID()
			save(t, a, id, []byte("v"), i)
			if n, err := d.DeleteSubject(ctx, i.Provider, i.Subject); err != nil || n != 1 {
				t.Errorf("DeleteSubject on the peer of a session saved on the first = %d, %v; want 1, nil", n, err)
			}
			wantGone(t, a, id, "on the first after DeleteSubject on the peer")
		}
	})
	t.Run("ReplayGuardShared", func(t *testing.T) {
		a := c.store(t)
		b, _ := c.o.Peer(t, a)
		ga := implements[auth.ReplayGuard](t, a)
		gb := implements[auth.ReplayGuard](t, b)
		key := unique("jti")
		if first, err := ga.ClaimTokenID(t.Context(), key, time.Now().Add(time.Minute)); !first || err != nil {
			t.Fatalf("ClaimTokenID on the first = %v, %v; want true, nil", first, err)
		}
		if first, err := gb.ClaimTokenID(t.Context(), key, time.Now().Add(time.Minute)); first || err != nil {
			t.Errorf("ClaimTokenID on the peer of a key claimed on the first = %v, %v; want false, nil", first, err)
		}
	})
	t.Run("LockShared", func(t *testing.T) {
		a := c.store(t)
		b, _ := c.o.Peer(t, a)
		la := implements[auth.RefreshLocker](t, a)
		lb := implements[auth.RefreshLocker](t, b)
		t.Run("Excludes", func(t *testing.T) { lockExcludes(t, la, lb) })
		t.Run("WaiterGetsItAfterUnlock", func(t *testing.T) { lockHandover(t, la, lb) })
	})
	t.Run("DeadHolderFreesLockAfterTTL", func(t *testing.T) {
		a := c.store(t)
		la := implements[auth.RefreshLocker](t, a)
		b, kill := c.o.Peer(t, a)
		lb := b.(auth.RefreshLocker)
		id := NewID()
		const ttl = 300 * time.Millisecond
		dead := mustLock(t, lb, t.Context(), id, ttl)
		t.Cleanup(dead)
		kill()
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), ttl+2*time.Second)
		defer cancel()
		unlock, err := la.LockRefresh(ctx, id, 10*time.Second)
		if err != nil {
			t.Fatalf("LockRefresh after the holder (ttl %v) died: %v after %v; want the lock once the ttl has passed", ttl, err, time.Since(start).Round(time.Millisecond))
		}
		defer unlock()
		if d := time.Since(start); d > ttl+time.Second {
			t.Errorf("LockRefresh after the holder died took %v; want at most about its ttl, %v", d, ttl)
		}
	})
}
