package auth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
	"github.com/gatehouse/auth/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) auth.Store {
		return auth.NewMemoryStore(auth.MemoryStoreOptions{})
	})
}

// msClock is a clock that tests move by hand.
type msClock struct {
	mu  sync.Mutex
	now time.Time
}

func newMSClock() *msClock { return &msClock{now: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *msClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *msClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// msInfo is the SessionInfo of a session of sub that ends at expiry.
func msInfo(sub string, expiry time.Time) auth.SessionInfo {
	return auth.SessionInfo{Provider: "p", Subject: sub, Expiry: expiry}
}

// msFound reports whether Load finds id, failing the test on an error.
func msFound(t *testing.T, s *auth.MemoryStore, id string) bool {
	t.Helper()
	_, found, err := s.Load(context.Background(), id)
	if err != nil {
		t.Fatalf("Load(%s): %v", id, err)
	}
	return found
}

func msSave(t *testing.T, s *auth.MemoryStore, id string, data []byte, info auth.SessionInfo) {
	t.Helper()
	if err := s.Save(context.Background(), id, data, info); err != nil {
		t.Fatalf("Save(%s): %v", id, err)
	}
}

// TestMemoryStoreNow: sessions, deleted IDs and token IDs expire by the
// store's clock.
func TestMemoryStoreNow(t *testing.T) {
	clock := newMSClock()
	s := auth.NewMemoryStore(auth.MemoryStoreOptions{Now: clock.Now})
	ctx := context.Background()
	msSave(t, s, "a", []byte("x"), msInfo("alice", clock.Now().Add(time.Hour)))
	clock.Advance(time.Hour - time.Second)
	if !msFound(t, s, "a") {
		t.Error("Load a second before Expiry: not found; want found")
	}
	clock.Advance(time.Second)
	if msFound(t, s, "a") {
		t.Error("Load at Expiry: found; want not found")
	}
	if n := s.Len(); n != 0 {
		t.Errorf("Len after the only session expired = %d; want 0", n)
	}

	// A deleted ID stays deleted for two minutes, then may be saved again.
	msSave(t, s, "b", []byte("x"), msInfo("alice", clock.Now().Add(time.Hour)))
	if err := s.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2*time.Minute - time.Second)
	if err := s.Save(ctx, "b", []byte("y"), msInfo("alice", clock.Now().Add(time.Hour))); !errors.Is(err, auth.ErrSessionEnded) {
		t.Errorf("Save 1m59s after Delete: %v; want auth.ErrSessionEnded", err)
	}
	clock.Advance(time.Second)
	if err := s.Save(ctx, "b", []byte("y"), msInfo("alice", clock.Now().Add(time.Hour))); err != nil {
		t.Errorf("Save 2m after Delete: %v; want nil", err)
	}

	// Claimed token IDs until their expiry.
	if first, _ := s.ClaimTokenID(ctx, "jti", clock.Now().Add(10*time.Minute)); !first {
		t.Fatal("ClaimTokenID: false; want true")
	}
	clock.Advance(10*time.Minute - time.Second)
	if first, _ := s.ClaimTokenID(ctx, "jti", clock.Now().Add(10*time.Minute)); first {
		t.Error("ClaimTokenID a second before the first claim's expiry: true; want false")
	}
	clock.Advance(time.Second)
	if first, _ := s.ClaimTokenID(ctx, "jti", clock.Now().Add(10*time.Minute)); !first {
		t.Error("ClaimTokenID at the first claim's expiry: false; want true")
	}
}

// TestMemoryStoreMaxSessions: when full, the least recently used session
// goes.
func TestMemoryStoreMaxSessions(t *testing.T) {
	clock := newMSClock()
	s := auth.NewMemoryStore(auth.MemoryStoreOptions{MaxSessions: 3, Now: clock.Now})
	end := clock.Now().Add(time.Hour)
	for _, id := range []string{"a", "b", "c"} {
		msSave(t, s, id, []byte(id), msInfo("alice", end))
	}
	msFound(t, s, "a") // a is now used more recently than b
	msSave(t, s, "d", []byte("d"), msInfo("alice", end))
	for id, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if got := msFound(t, s, id); got != want {
			t.Errorf("Load(%s) after a fourth Save into a store of 3 = found %v; want %v (b least recently used)", id, got, want)
		}
	}
	if n := s.Len(); n != 3 {
		t.Errorf("Len = %d; want 3", n)
	}
	// Overwriting a session does not make room for nothing.
	msSave(t, s, "c", []byte("c2"), msInfo("alice", end))
	if n := s.Len(); n != 3 {
		t.Errorf("Len after overwriting a session = %d; want 3", n)
	}
}

// TestMemoryStoreExpiredGoFirst: expired sessions make room before any
// live one, even one used less recently.
func TestMemoryStoreExpiredGoFirst(t *testing.T) {
	clock := newMSClock()
	s := auth.NewMemoryStore(auth.MemoryStoreOptions{MaxSessions: 10, Now: clock.Now})
	for i := range 5 {
		msSave(t, s, fmt.Sprint("old", i), []byte("x"), msInfo("alice", clock.Now().Add(time.Hour)))
	}
	for i := range 5 {
		msSave(t, s, fmt.Sprint("short", i), []byte("x"), msInfo("bob", clock.Now().Add(time.Minute)))
	}
	clock.Advance(2 * time.Minute)
	for i := range 5 {
		msSave(t, s, fmt.Sprint("new", i), []byte("x"), msInfo("carol", clock.Now().Add(time.Hour)))
	}
	for i := range 5 {
		if !msFound(t, s, fmt.Sprint("old", i)) {
			t.Errorf("Load(old%d), live and least recently used, after expired sessions made room: not found; want found", i)
		}
	}
	if n := s.Len(); n != 10 {
		t.Errorf("Len = %d; want 10", n)
	}
}

// TestMemoryStoreMaxBytes: the sessions' bytes stay within MaxBytes, and a
// session larger than MaxBytes is refused.
func TestMemoryStoreMaxBytes(t *testing.T) {
	s := auth.NewMemoryStore(auth.MemoryStoreOptions{MaxBytes: 10_000})
	end := time.Now().Add(time.Hour)
	data := make([]byte, 4000) // with its overhead, about 4.3 KB: two fit
	for i := range 4 {
		msSave(t, s, fmt.Sprint("s", i), data, msInfo("alice", end))
	}
	if n := s.Len(); n != 2 {
		t.Errorf("Len after four sessions of 4 KB into 10 KB = %d; want 2", n)
	}
	for i, want := range []bool{false, false, true, true} {
		if got := msFound(t, s, fmt.Sprint("s", i)); got != want {
			t.Errorf("Load(s%d) = found %v; want %v", i, got, want)
		}
	}
	err := s.Save(context.Background(), "big", make([]byte, 10_000), msInfo("alice", end))
	if err == nil || errors.Is(err, auth.ErrSessionEnded) {
		t.Errorf("Save of 10 KB into a store of 10 KB: %v; want an error, not auth.ErrSessionEnded", err)
	}
	if n := s.Len(); n != 2 {
		t.Errorf("Len after a refused Save = %d; want 2", n)
	}
}

// TestMemoryStoreSweep: expired sessions do not pile up, even when no one
// loads them again: writes reclaim them.
func TestMemoryStoreSweep(t *testing.T) {
	clock := newMSClock()
	s := auth.NewMemoryStore(auth.MemoryStoreOptions{MaxBytes: 1 << 20, Now: clock.Now})
	data := make([]byte, 1000)
	// 10 MB of sessions through a store of 1 MB, each expiring after a
	// minute, every one of them found while it lives.
	for i := range 10_000 {
		if i > 0 && i%100 == 0 {
			clock.Advance(time.Minute)
		}
		id := fmt.Sprint("s", i)
		msSave(t, s, id, data, msInfo("alice", clock.Now().Add(time.Minute)))
		if !msFound(t, s, id) {
			t.Fatalf("Load(%s) right after Save: not found; want found", id)
		}
	}
	if n := s.Len(); n != 100 {
		t.Errorf("Len = %d; want the 100 sessions of the last minute", n)
	}
}

// TestMemoryStoreLockWaitsAtMostTTL: a waiter gives up after its ttl.
func TestMemoryStoreLockWaitsAtMostTTL(t *testing.T) {
	s := auth.NewMemoryStore(auth.MemoryStoreOptions{})
	ctx := context.Background()
	unlock, err := s.LockRefresh(ctx, "id", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	start := time.Now()
	if _, err := s.LockRefresh(ctx, "id", 50*time.Millisecond); err == nil {
		t.Error("LockRefresh of a held lock with ttl 50ms: got it; want an error")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("LockRefresh of a held lock with ttl 50ms returned after %v; want after about 50ms", d)
	}
}

// TestMemoryStoreWithMiddleware: a MemoryStore as Config.Store keeps the
// session out of the cookie, ends it at logout and by EndSessions, and
// serves back-channel logout.
func TestMemoryStoreWithMiddleware(t *testing.T) {
	store := auth.NewMemoryStore(auth.MemoryStoreOptions{})
	app := apptest.New(t, authtest.Config{}, func(c *auth.Config) {
		c.Store = store
		c.BackchannelLogoutPath = "/auth/backchannel-logout"
	})
	app.P.SetBackchannelLogoutURI(app.URL + "/auth/backchannel-logout")
	whoami := func(c *http.Client) string {
		t.Helper()
		_, body := apptest.Get(t, c, app.URL+"/")
		return body
	}

	alice := app.Login(t, "alice")
	if got := whoami(alice); got != "hello Alice Example" {
		t.Fatalf("GET / after login: %q; want hello Alice Example", got)
	}
	if n := store.Len(); n != 1 {
		t.Errorf("sessions in the store after login = %d; want 1", n)
	}
	for _, c := range app.SessionCookies(alice) {
		if len(c.Value) > 400 {
			t.Errorf("cookie %s of %d bytes; want a small cookie holding the session ID", c.Name, len(c.Value))
		}
	}

	if n, err := app.M.EndSessions(context.Background(), "", "alice"); n != 1 || err != nil {
		t.Errorf("EndSessions(alice) = %d, %v; want 1, nil", n, err)
	}
	if got := whoami(alice); got != "anonymous" {
		t.Errorf("GET / after EndSessions: %q; want anonymous", got)
	}

	alice = app.Login(t, "alice")
	if err := app.P.BackchannelLogout("alice"); err != nil {
		t.Fatalf("back-channel logout: %v", err)
	}
	if got := whoami(alice); got != "anonymous" {
		t.Errorf("GET / after back-channel logout: %q; want anonymous", got)
	}
	if n := store.Len(); n != 0 {
		t.Errorf("sessions in the store after back-channel logout = %d; want 0", n)
	}
}
