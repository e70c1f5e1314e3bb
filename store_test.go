package auth_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

// memStore is auth.MemoryStore with switches that make it fail like an
// unreachable server (wholly, or only its Save or Delete), and a count of
// its saves.
type memStore struct {
	*auth.MemoryStore
	mu         sync.Mutex
	down       bool
	saveDown   bool // only Save fails
	deleteDown bool // only Delete fails
	saves      int
}

var errStoreDown = errors.New("memstore: connection refused")

func newMemStore() *memStore {
	return &memStore{MemoryStore: auth.NewMemoryStore(auth.MemoryStoreOptions{})}
}

func (s *memStore) setDown(down bool) { s.set(&s.down, down) }

func (s *memStore) set(what *bool, v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*what = v
}

func (s *memStore) failing(op *bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down || op != nil && *op
}

func (s *memStore) Load(ctx context.Context, id string) ([]byte, bool, error) {
	if s.failing(nil) {
		return nil, false, errStoreDown
	}
	return s.MemoryStore.Load(ctx, id)
}

func (s *memStore) Save(ctx context.Context, id string, data []byte, info auth.SessionInfo) error {
	if s.failing(&s.saveDown) {
		return errStoreDown
	}
	s.mu.Lock()
	s.saves++
	s.mu.Unlock()
	return s.MemoryStore.Save(ctx, id, data, info)
}

func (s *memStore) Delete(ctx context.Context, id string) error {
	if s.failing(&s.deleteDown) {
		return errStoreDown
	}
	return s.MemoryStore.Delete(ctx, id)
}

func (s *memStore) DeleteSubject(ctx context.Context, provider, sub string) (int, error) {
	if s.failing(nil) {
		return 0, errStoreDown
	}
	return s.MemoryStore.DeleteSubject(ctx, provider, sub)
}

func (s *memStore) DeleteSID(ctx context.Context, provider, sid string) (int, error) {
	if s.failing(nil) {
		return 0, errStoreDown
	}
	return s.MemoryStore.DeleteSID(ctx, provider, sid)
}

func (s *memStore) LockRefresh(ctx context.Context, id string, ttl time.Duration) (func(), error) {
	if s.failing(nil) {
		return nil, errStoreDown
	}
	return s.MemoryStore.LockRefresh(ctx, id, ttl)
}

// newStoreApp is newTestApp with sessions in store.
func newStoreApp(t *testing.T, store auth.Store, pcfg authtest.Config) *apptest.App {
	t.Helper()
	return apptest.New(t, pcfg, func(c *auth.Config) { c.Store = store })
}

func TestStoreSessionIsAnIDInTheCookie(t *testing.T) {
	store := newMemStore()
	app := newStoreApp(t, store, authtest.Config{})
	c := app.Login(t, "alice")
	if got := store.Len(); got != 1 {
		t.Fatalf("sessions in the store after login = %d, want 1", got)
	}
	cookies := app.SessionCookies(c)
	if len(cookies) != 1 || len(cookies[0].Value) > 400 {
		t.Errorf("session cookies = %d, first %d bytes; want one small cookie holding the ID", len(cookies), len(cookies[0].Value))
	}
	if status, u := app.Me(t, c); status != http.StatusOK || u.Subject != "alice" {
		t.Errorf("GET /me: status %d, user %+v; want 200 alice", status, u)
	}
}

func TestStoreLogoutRevokes(t *testing.T) {
	store := newMemStore()
	app := newStoreApp(t, store, authtest.Config{})
	c := app.Login(t, "alice")
	stolen := app.Clone(t, c)
	if res, _ := apptest.Get(t, c, app.URL+"/auth/logout"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET /auth/logout: status %d, want 303", res.StatusCode)
	}
	if got := store.Len(); got != 0 {
		t.Errorf("sessions in the store after logout = %d, want 0", got)
	}
	if status, _ := app.Me(t, stolen); status != http.StatusUnauthorized {
		t.Errorf("GET /me with a copy of the logged-out cookie: status %d, want 401", status)
	}
}

func TestStoreUnknownSessionIsAnonymous(t *testing.T) {
	store := newMemStore()
	app := newStoreApp(t, store, authtest.Config{})
	c := app.Login(t, "alice")
	// Expired or flushed: gone from the store.
	if n, err := store.DeleteSubject(context.Background(), "", "alice"); n != 1 || err != nil {
		t.Fatalf("DeleteSubject = %d, %v; want 1, nil", n, err)
	}
	res, body := apptest.Get(t, c, app.URL+"/")
	if body != "anonymous" {
		t.Errorf("GET / with an unknown session ID: body %q, want anonymous", body)
	}
	if ck := apptest.SetCookies(res)["gatehouse"]; ck == nil || ck.MaxAge >= 0 {
		t.Errorf("GET / with an unknown session ID: Set-Cookie %v, want the cookie cleared", ck)
	}
}

// TestStoreOutage: an unreachable store makes protected routes answer 503
// and keeps the cookie; when it is back, the same cookie works.
func TestStoreOutage(t *testing.T) {
	store := newMemStore()
	app := newStoreApp(t, store, authtest.Config{})
	c := app.Login(t, "alice")
	store.setDown(true)
	for _, path := range []string{"/me", "/token"} {
		for _, accept := range []string{"application/json", "text/html"} {
			res, body := apptest.Get(t, c, app.URL+path, "Accept", accept)
			if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "unavailable") {
				t.Errorf("GET %s (Accept %s) with the store down: status %d, body %q; want 503 saying unavailable", path, accept, res.StatusCode, body)
			}
			if len(res.Header.Values("Set-Cookie")) != 0 {
				t.Errorf("GET %s with the store down: Set-Cookie %q, want none", path, res.Header.Values("Set-Cookie"))
			}
		}
	}
	if res, body := apptest.Get(t, c, app.URL+"/"); res.StatusCode != http.StatusOK || body != "anonymous" || len(res.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("GET / with the store down: status %d, body %q, Set-Cookie %q; want 200 anonymous and no Set-Cookie", res.StatusCode, body, res.Header.Values("Set-Cookie"))
	}
	if !strings.Contains(app.Logs.String(), "session store failed") {
		t.Errorf("logs = %q, want the store failure logged", app.Logs.String())
	}
	// Logout cannot delete the stored session now: it keeps the cookie
	// rather than leave a live session behind a cleared one.
	if res, _ := apptest.Get(t, c, app.URL+"/auth/logout"); res.StatusCode != http.StatusServiceUnavailable || len(res.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("logout with the store down: status %d, Set-Cookie %q; want 503 and no Set-Cookie", res.StatusCode, res.Header.Values("Set-Cookie"))
	}
	store.setDown(false)
	if status, u := app.Me(t, c); status != http.StatusOK || u.Subject != "alice" {
		t.Errorf("GET /me with the store back: status %d, user %+v; want 200 alice", status, u)
	}
	if res, _ := apptest.Get(t, c, app.URL+"/auth/logout"); res.StatusCode != http.StatusSeeOther || store.Len() != 0 {
		t.Errorf("logout with the store back: status %d, %d stored sessions; want 303 and none", res.StatusCode, store.Len())
	}
}

// TestStoreSharedRefresh: two instances share a store; concurrent requests
// with the same expired session, split between them, make one refresh
// grant, even though the provider rotates refresh tokens.
func TestStoreSharedRefresh(t *testing.T) {
	store := newMemStore()
	p := authtest.NewProvider(authtest.Config{Rotation: authtest.Rotate})
	t.Cleanup(p.Close)
	edit := func(c *auth.Config) { c.Store = store }
	apps := []*apptest.App{apptest.NewFor(t, p, edit), apptest.NewFor(t, p, edit)}
	c := apps[0].Login(t, "alice")
	p.Advance(2 * time.Hour)
	apptest.RefreshStorm(t, p, c, 20, apps...)
}

// TestStoreSaveFailsAfterRefresh: the provider rotated the refresh token
// but the store could not save the result; the new tokens live on in the
// grace cache instead of being lost (which would end the session at the
// next refresh).
func TestStoreSaveFailsAfterRefresh(t *testing.T) {
	store := newMemStore()
	app := newStoreApp(t, store, authtest.Config{Rotation: authtest.Rotate})
	c := app.Login(t, "alice")
	_, before := apptest.Get(t, c, app.URL+"/token")
	app.P.Advance(2 * time.Hour)
	store.set(&store.saveDown, true)
	res, after := apptest.Get(t, c, app.URL+"/token")
	if res.StatusCode != http.StatusOK || after == before {
		t.Fatalf("GET /token when the refreshed session cannot be stored: %d %q, want 200 with the new token", res.StatusCode, after)
	}
	if _, again := apptest.Get(t, c, app.URL+"/token"); again != after {
		t.Errorf("next request: token %q, want %q from the grace cache", again, after)
	}
	if n := app.P.Grants("refresh_token"); n != 1 {
		t.Errorf("refresh_token grants = %d, want 1", n)
	}
	if !strings.Contains(app.Logs.String(), "not stored") {
		t.Errorf("the failed save was not logged")
	}
}

// TestStoreLogoutWhenDeleteFails: logout that cannot delete the stored
// session keeps the cookie and says so, rather than pretend.
func TestStoreLogoutWhenDeleteFails(t *testing.T) {
	store := newMemStore()
	app := newStoreApp(t, store, authtest.Config{})
	c := app.Login(t, "alice")
	stolen := app.Clone(t, c)
	store.set(&store.deleteDown, true)
	if res, _ := apptest.Get(t, c, app.URL+"/auth/logout"); res.StatusCode != http.StatusServiceUnavailable || len(res.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("logout when Delete fails: status %d, Set-Cookie %q; want 503 and the cookie kept", res.StatusCode, res.Header.Values("Set-Cookie"))
	}
	store.set(&store.deleteDown, false)
	if res, _ := apptest.Get(t, c, app.URL+"/auth/logout"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("logout retried: status %d, want 303", res.StatusCode)
	}
	if status, _ := app.Me(t, stolen); status != http.StatusUnauthorized {
		t.Errorf("copy of the cookie after logout: status %d, want 401", status)
	}
}
