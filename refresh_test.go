package auth_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

func TestRefreshBeforeHandler(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	c := app.Login(t, "alice")
	_, before := apptest.Get(t, c, app.URL+"/token")
	app.P.Advance(time.Hour + time.Second) // the access token has expired

	res, after := apptest.Get(t, c, app.URL+"/token")
	if res.StatusCode != http.StatusOK || after == before || after == "" {
		t.Fatalf("GET /token after expiry: %d %q, want 200 with a new token (old %q)", res.StatusCode, after, before)
	}
	if got := app.P.Grants("refresh_token"); got != 1 {
		t.Errorf("refresh_token grants = %d, want 1", got)
	}
	if s := apptest.SetCookies(res)["gatehouse"]; s == nil || s.MaxAge <= 0 {
		t.Errorf("refreshing response Set-Cookie = %v, want the updated session cookie", res.Header["Set-Cookie"])
	}
	// The updated cookie carries the new token: no further grant.
	for i := 0; i < 3; i++ {
		if _, got := apptest.Get(t, c, app.URL+"/token"); got != after {
			t.Errorf("request %d after refresh: token %q, want %q", i, got, after)
		}
	}
	if got := app.P.Grants("refresh_token"); got != 1 {
		t.Errorf("refresh_token grants after more requests = %d, want 1", got)
	}
}

func TestRefreshLeeway(t *testing.T) {
	for _, tt := range []struct {
		name    string
		ttl     time.Duration
		leeway  time.Duration
		advance time.Duration
		want    int
	}{
		{"far from expiry", time.Hour, 0, 59 * time.Minute, 0},
		{"within default leeway", time.Hour, 0, time.Hour - 20*time.Second, 1},
		{"short token: before half its life", 40 * time.Second, 0, 17 * time.Second, 0},
		{"short token: past half", 40 * time.Second, 0, 23 * time.Second, 1},
		{"negative leeway waits for expiry", time.Hour, -1, time.Hour - time.Second, 0},
		{"negative leeway, expired", time.Hour, -1, time.Hour + time.Second, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app := apptest.New(t, authtest.Config{AccessTokenTTL: tt.ttl}, func(c *auth.Config) { c.RefreshLeeway = tt.leeway })
			c := app.Login(t, "alice")
			app.P.Advance(tt.advance)
			if status, _ := app.Me(t, c); status != http.StatusOK {
				t.Fatalf("GET /me: status %d", status)
			}
			if got := app.P.Grants("refresh_token"); got != tt.want {
				t.Errorf("refresh_token grants = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestConcurrentRefreshIsShared(t *testing.T) {
	for _, rotation := range []authtest.RotationMode{authtest.Rotate, authtest.NoRotation} {
		t.Run([]string{"rotate", "grace", "no rotation"}[rotation], func(t *testing.T) {
			app := apptest.New(t, authtest.Config{Rotation: rotation}, nil)
			c := app.Login(t, "alice")
			app.P.Advance(2 * time.Hour)
			// Each request carries the same expired cookie.
			apptest.RefreshStorm(t, app.P, c, 50, app)
		})
	}
}

func TestOldCookieWithinGrace(t *testing.T) {
	app := apptest.New(t, authtest.Config{Rotation: authtest.Rotate}, nil)
	c := app.Login(t, "alice")
	old := app.Clone(t, c)
	late := app.Clone(t, c)
	app.P.Advance(2 * time.Hour)
	_, fresh := apptest.Get(t, c, app.URL+"/token")
	app.P.Advance(5 * time.Second)
	res, got := apptest.Get(t, old, app.URL+"/token")
	if res.StatusCode != http.StatusOK || got != fresh {
		t.Errorf("old cookie 5 s after refresh: %d %q, want 200 %q", res.StatusCode, got, fresh)
	}
	if n := app.P.Grants("refresh_token"); n != 1 {
		t.Errorf("refresh_token grants = %d, want 1", n)
	}
	if s := apptest.SetCookies(res)["gatehouse"]; s == nil {
		t.Errorf("old cookie within grace: no Set-Cookie with the refreshed session")
	}
	// Past the grace period a browser that still has the old cookie
	// sends a reused refresh token: the provider says invalid_grant and
	// that session ends, cleanly.
	app.P.Advance(time.Minute)
	if status, _ := app.Me(t, late); status != http.StatusUnauthorized {
		t.Errorf("old cookie after grace: status = %d, want 401", status)
	}
	if status, _ := app.Me(t, old); status != http.StatusOK {
		t.Errorf("browser that got the refreshed cookie within grace: status = %d, want 200", status)
	}
}

func TestRefreshRejectedEndsSession(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	c := app.Login(t, "alice")
	app.P.RevokeUser("alice")
	app.P.Advance(2 * time.Hour)
	res, body := apptest.Get(t, c, app.URL+"/me", "Accept", "text/html")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), "/auth/login") {
		t.Errorf("GET /me after revoked refresh: %d %q (%q), want 302 to login", res.StatusCode, res.Header.Get("Location"), body)
	}
	if s := apptest.SetCookies(res)["gatehouse"]; s == nil || s.MaxAge >= 0 {
		t.Errorf("session cookie not cleared: %v", res.Header["Set-Cookie"])
	}
	if len(app.SessionCookies(c)) != 0 {
		t.Errorf("browser still holds %v", app.SessionCookies(c))
	}
	if !strings.Contains(app.Logs.String(), "session ended") {
		t.Errorf("no log record of the ended session")
	}
}

func TestRefreshOutageKeepsSession(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	c := app.Login(t, "alice")
	_, before := apptest.Get(t, c, app.URL+"/token")
	app.P.Advance(2 * time.Hour)
	app.P.FailNext(authtest.Fault{TokenStatus: 500})
	res, got := apptest.Get(t, c, app.URL+"/token")
	if res.StatusCode != http.StatusOK || got != before {
		t.Errorf("GET /token during outage: %d %q, want 200 with the old token", res.StatusCode, got)
	}
	if !strings.Contains(app.Logs.String(), "refresh failed") || strings.Contains(app.Logs.String(), before) {
		t.Errorf("outage log = %q, want a refresh failure record without the token", app.Logs.String())
	}
	// Backoff: an immediate retry does not reach the provider.
	n := apptest.RequestsTo(app.P, "token")
	apptest.Get(t, c, app.URL+"/token")
	if got := apptest.RequestsTo(app.P, "token"); got != n {
		t.Errorf("token requests right after a failure: %d more, want 0 (backoff)", got-n)
	}
	// After the backoff the provider is back and the refresh succeeds.
	app.P.Advance(2 * time.Second)
	if _, got := apptest.Get(t, c, app.URL+"/token"); got == before {
		t.Errorf("after backoff: token unchanged, want refreshed")
	}
}

// TestRefreshedIDToken: the ID token a refresh brings replaces the
// session's claims, unless it is another user's: then the session ends.
func TestRefreshedIDToken(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	for _, tt := range []struct {
		name   string
		claims func(map[string]any)
		check  func(t *testing.T, c *http.Client)
	}{
		{"another user", func(c map[string]any) { c["sub"] = "bob" }, func(t *testing.T, c *http.Client) {
			if status, _ := app.Me(t, c); status != http.StatusUnauthorized {
				t.Errorf("GET /me after refresh returned bob's ID token: status = %d, want 401", status)
			}
			if len(app.SessionCookies(c)) != 0 {
				t.Errorf("session cookie kept after a refresh for another user")
			}
		}},
		{"new claims", func(c map[string]any) { c["name"] = "Alice Renamed" }, func(t *testing.T, c *http.Client) {
			if _, u := app.Me(t, c); u == nil || u.Name != "Alice Renamed" {
				t.Errorf("user after refresh = %+v, want the refreshed ID token's name", u)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := app.Login(t, "alice")
			app.P.Advance(2 * time.Hour)
			app.P.FailNext(authtest.Fault{IDToken: tt.claims})
			tt.check(t, c)
		})
	}
}

func TestNoRefreshToken(t *testing.T) {
	app := apptest.New(t, authtest.Config{OfflineAccessOnly: true}, nil)
	c := app.Login(t, "alice")
	app.P.Advance(2 * time.Hour)
	app.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := auth.Client(r.Context()).Get(app.P.URL + "/userinfo")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		res.Body.Close()
		w.WriteHeader(res.StatusCode)
	}))
	res, _ := apptest.Get(t, c, app.URL+"/api")
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("client call with an expired token and no refresh token: status = %d, want the provider's 401", res.StatusCode)
	}
	if len(app.SessionCookies(c)) == 0 || app.P.Grants("refresh_token") != 0 {
		t.Errorf("session without refresh token: cookies %v, grants %d; want kept, 0", app.SessionCookies(c), app.P.Grants("refresh_token"))
	}
}

func TestClientRefreshesMidHandler(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	c := app.Login(t, "alice")
	var flusher bool
	app.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, flusher = w.(http.Flusher)
		app.P.Advance(2 * time.Hour) // the token expires while the handler runs
		res, err := auth.Client(r.Context()).Get(app.P.URL + "/userinfo")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		w.WriteHeader(res.StatusCode)
		w.Write(b)
	}))
	res, body := apptest.Get(t, c, app.URL+"/api")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"alice"`) {
		t.Fatalf("GET /api: %d %q, want alice's userinfo", res.StatusCode, body)
	}
	if app.P.Grants("refresh_token") != 1 {
		t.Errorf("refresh_token grants = %d, want 1", app.P.Grants("refresh_token"))
	}
	if s := apptest.SetCookies(res)["gatehouse"]; s == nil || s.MaxAge <= 0 {
		t.Errorf("mid-handler refresh did not update the cookie: %v", res.Header["Set-Cookie"])
	}
	if !flusher {
		t.Errorf("the handler's ResponseWriter is not an http.Flusher")
	}
	// The next request uses the saved token: no second grant.
	app.Serve(apptest.Routes(app.M))
	apptest.Get(t, c, app.URL+"/me")
	if app.P.Grants("refresh_token") != 1 {
		t.Errorf("refresh_token grants after next request = %d, want 1", app.P.Grants("refresh_token"))
	}
}

func TestClientAnonymous(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	var err error
	app.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err = auth.Client(r.Context()).Get(app.P.URL + "/userinfo")
	}))
	apptest.Get(t, http.DefaultClient, app.URL+"/x")
	if !errors.Is(err, auth.ErrNoSession) {
		t.Errorf("anonymous Client().Get: error = %v, want ErrNoSession", err)
	}
}

func TestSessionLifetime(t *testing.T) {
	app := apptest.New(t, authtest.Config{RefreshTokenTTL: 30 * 24 * time.Hour}, func(c *auth.Config) { c.SessionLifetime = 24 * time.Hour })
	c := app.Login(t, "alice")
	app.P.Advance(23 * time.Hour)
	if status, _ := app.Me(t, c); status != http.StatusOK {
		t.Fatalf("GET /me within the session lifetime: status %d, want 200", status)
	}
	app.P.Advance(2 * time.Hour) // refreshed tokens do not extend it
	if status, _ := app.Me(t, c); status != http.StatusUnauthorized {
		t.Errorf("GET /me past the session lifetime: status = %d, want 401", status)
	}
}

// TestClientKeepsTokenOnItsHost: Client follows a redirect on the same
// host, but returns a redirect to another host instead of sending the
// token there.
func TestClientKeepsTokenOnItsHost(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	c := app.Login(t, "alice")
	var leaked, followed string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { leaked = r.Header.Get("Authorization") }))
	t.Cleanup(other.Close)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/here", http.StatusFound)
		case "/here":
			followed = r.Header.Get("Authorization")
		case "/away":
			http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
		}
	}))
	t.Cleanup(api.Close)
	statuses := map[string]int{}
	app.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, path := range []string{"/moved", "/away"} {
			res, err := auth.Client(r.Context()).Get(api.URL + path)
			if err != nil {
				t.Errorf("Client().Get(%s): %v", path, err)
				continue
			}
			res.Body.Close()
			statuses[path] = res.StatusCode
		}
	}))
	apptest.Get(t, c, app.URL+"/x")
	if followed == "" || statuses["/moved"] != http.StatusOK {
		t.Errorf("same-host redirect: status %d, Authorization %q; want followed with the token", statuses["/moved"], followed)
	}
	if leaked != "" || statuses["/away"] != http.StatusFound {
		t.Errorf("cross-host redirect: status %d, other host got Authorization %q; want the 302 back and no token sent", statuses["/away"], leaked)
	}
}

// TestGraceAfterLogout: a copy of the cookie from before a refresh (a
// thief's) is not upgraded from the grace cache once the user has logged
// out: it is anonymous, then and later.
func TestGraceAfterLogout(t *testing.T) {
	app := apptest.New(t, authtest.Config{Rotation: authtest.Rotate}, nil)
	c := app.Login(t, "alice")
	thief := app.Clone(t, c)
	app.P.Advance(2 * time.Hour)
	if status, _ := app.Me(t, c); status != http.StatusOK { // refreshed: a grace entry
		t.Fatalf("GET /me after expiry: %d, want 200", status)
	}
	req, _ := http.NewRequest("POST", app.URL+"/auth/logout", nil)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	app.P.Advance(10 * time.Second)
	if status, _ := app.Me(t, thief); status != http.StatusUnauthorized {
		t.Errorf("pre-refresh cookie 10 s after logout: %d, want 401", status)
	}
	app.P.Advance(50 * time.Minute)
	if status, _ := app.Me(t, thief); status != http.StatusUnauthorized {
		t.Errorf("pre-refresh cookie 50 min after logout: %d, want 401", status)
	}
}

// TestGraceHitIsNotDue: with a provider that does not rotate refresh
// tokens and access tokens shorter than the grace period, a session that
// is due again must get a new token, not its own expired one back from
// the grace cache.
func TestGraceHitIsNotDue(t *testing.T) {
	app := apptest.New(t, authtest.Config{Rotation: authtest.NoRotation, AccessTokenTTL: 10 * time.Second}, nil)
	c := app.Login(t, "alice")
	_, first := apptest.Get(t, c, app.URL+"/token")
	app.P.Advance(10 * time.Second)
	_, second := apptest.Get(t, c, app.URL+"/token")
	app.P.Advance(10 * time.Second)
	res, third := apptest.Get(t, c, app.URL+"/token")
	if res.StatusCode != http.StatusOK || third == second || second == first {
		t.Errorf("tokens: %q, %q, then %d %q; want three different tokens", first, second, res.StatusCode, third)
	}
	if n := app.P.Grants("refresh_token"); n != 2 {
		t.Errorf("refresh_token grants = %d, want 2", n)
	}
}

// TestGraceOff: with RefreshGrace negative nothing is kept in memory, and
// grace entries end with the grace period.
func TestGraceOff(t *testing.T) {
	for _, tt := range []struct {
		grace time.Duration
		want  int
	}{{-1, 0}, {0, 1}} {
		app := apptest.New(t, authtest.Config{}, func(c *auth.Config) { c.RefreshGrace = tt.grace })
		c := app.Login(t, "alice")
		app.P.Advance(2 * time.Hour)
		app.Me(t, c)
		if n := auth.GraceLen(app.M); n != tt.want {
			t.Errorf("RefreshGrace %v: %d grace entries after a refresh, want %d", tt.grace, n, tt.want)
		}
	}
}

// TestCookieSessionsOnTwoInstances measures the limit README states: with
// sessions in cookies, two instances that find one session due at the
// same moment both refresh it, and a provider with strict refresh-token
// rotation takes the second use of the token for a replay and revokes the
// grant: the session ends. A Store with a RefreshLocker (redisstore)
// prevents it; so does sending each user to one instance.
func TestCookieSessionsOnTwoInstances(t *testing.T) {
	p := authtest.NewProvider(authtest.Config{Rotation: authtest.Rotate})
	t.Cleanup(p.Close)
	apps := []*apptest.App{apptest.NewFor(t, p, nil), apptest.NewFor(t, p, nil)}
	const n = 20
	browsers := make([]*http.Client, n)
	for i := range browsers {
		sub := fmt.Sprintf("user%d", i)
		p.AddUser(authtest.User{Subject: sub, Name: sub})
		browsers[i] = apps[0].Login(t, sub)
	}
	p.Advance(2 * time.Hour) // every access token has expired
	// Each session sends two requests at once, one to each instance.
	apptest.Concurrently(t, 2*n, func(i int) error {
		apptest.Get(t, apps[i%2].Clone(t, browsers[i/2]), apps[i%2].URL+"/me", "Accept", "application/json")
		return nil
	})
	ended := 0
	for _, c := range browsers {
		if status, _ := apps[0].Me(t, c); status != http.StatusOK {
			ended++
		}
	}
	t.Logf("cookie sessions on two instances, strict rotation: %d of %d sessions ended after two simultaneous requests each", ended, n)
	if ended == 0 {
		t.Errorf("no session ended: README says two instances can end a session they refresh at once; update it")
	}
}
