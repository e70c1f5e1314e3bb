package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/internal/apptest"
)

// newAppleApp serves the app over https with the Apple preset, pointed at
// a fake Apple. logins receives the Identity OnLogin sees.
func newAppleApp(t *testing.T, edit func(p *auth.Provider)) (*apptest.App, *fakeApple, *logins) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // a .p8 key is an ECDSA P-256 key
	if err != nil {
		t.Fatal(err)
	}
	apple := newFakeApple(t, "TEAM123456", "KEY1234567", &key.PublicKey)
	seen := &logins{}
	app := apptest.StartTLS(t, func(appURL string) auth.Config {
		apple.op.AddRedirectURI(appURL + "/auth/callback")
		p := apple.provider(key)
		if edit != nil {
			edit(&p)
		}
		return auth.Config{
			Providers:   []auth.Provider{p},
			RedirectURL: appURL + "/auth/callback",
			Now:         apple.op.Now,
			OnLogin: func(_ context.Context, u *auth.Identity, _ *oauth2.Token) error {
				seen.add(*u)
				return nil
			},
		}
	}, nil)
	app.P = apple.op
	return app, apple, seen
}

type logins struct {
	mu  sync.Mutex
	ids []auth.Identity
}

func (l *logins) add(u auth.Identity) {
	l.mu.Lock()
	l.ids = append(l.ids, u)
	l.mu.Unlock()
}

func (l *logins) last() auth.Identity {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ids) == 0 {
		return auth.Identity{}
	}
	return l.ids[len(l.ids)-1]
}

// appleLogin signs in through the fake Apple's form_post page, and
// returns the browser and who /me says signed in.
func appleLogin(t *testing.T, app *apptest.App) (*http.Client, *auth.Identity) {
	t.Helper()
	c := app.TLSBrowser(t)
	res, body, visited := apptest.FollowPosts(t, c, app.URL+"/auth/login?next=/me")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("login with Apple: status %d (%q) after %v, want 200\nlog:\n%s", res.StatusCode, body, visited, app.Logs)
	}
	if !strings.HasPrefix(visited[len(visited)-2], "POST "+app.URL+"/auth/callback") {
		t.Errorf("login with Apple went %v, want a POST to the callback (form_post)", visited)
	}
	status, u := app.Me(t, c)
	if status != http.StatusOK {
		t.Fatalf("GET /me after login: status %d", status)
	}
	return c, u
}

// TestAppleLogin: a user's first login has their name (Apple's user
// field), and OnLogin sees it; a returning user's has none. Apple's string
// booleans read as booleans. Logout revokes at Apple with a fresh client
// secret.
func TestAppleLogin(t *testing.T) {
	app, apple, seen := newAppleApp(t, nil)

	c, u := appleLogin(t, app)
	if u.Provider != "apple" || u.Subject != appleUserSub || u.Name != "Jane Appleseed" || u.Email != "x7k2q9p4mz@privaterelay.appleid.com" || !u.EmailVerified {
		t.Errorf("first login: /me %+v, want Jane Appleseed with her verified relay address", u)
	}
	var claims struct {
		GivenName      string `json:"given_name"`
		FamilyName     string `json:"family_name"`
		EmailVerified  bool   `json:"email_verified"`
		IsPrivateEmail bool   `json:"is_private_email"`
		Iss            string `json:"iss"`
	}
	if err := u.DecodeClaims(&claims); err != nil || claims.GivenName != "Jane" || claims.FamilyName != "Appleseed" || !claims.EmailVerified || !claims.IsPrivateEmail || claims.Iss != apple.URL {
		t.Errorf("first login: claims %+v (%v), want the names and the booleans email_verified and is_private_email true", claims, err)
	}
	if got := seen.last(); got.Name != "Jane Appleseed" || got.Subject != appleUserSub {
		t.Errorf("OnLogin saw %+v, want Jane Appleseed", got)
	}

	req, _ := http.NewRequest(http.MethodPost, app.URL+"/auth/logout", nil)
	if res, _ := apptest.Do(t, c, req); res.StatusCode != http.StatusSeeOther {
		t.Errorf("POST /auth/logout: status %d, want 303", res.StatusCode)
	}
	if got := apple.revocations(); got != 1 {
		t.Errorf("revocations at Apple = %d, want 1; log:\n%s", got, app.Logs)
	}

	// Apple sends the name only once.
	_, u = appleLogin(t, app)
	if u.Subject != appleUserSub || u.Name != "" || !u.EmailVerified {
		t.Errorf("returning user: /me %+v, want the same user, without a name", u)
	}
	if got := seen.last(); got.Name != "" {
		t.Errorf("OnLogin for the returning user saw the name %q, want none", got.Name)
	}
	// Every client secret Apple got was valid (the fake checks iss, sub,
	// aud, kid, the signature and the lifetime) and short-lived.
	for _, s := range apple.accepted() {
		if life := s.exp.Sub(s.iat); life > time.Hour {
			t.Errorf("client secret valid for %s, want an hour at most", life)
		}
	}
	if n := len(apple.accepted()); n != 3 {
		t.Errorf("Apple accepted %d client secrets, want 3 (two codes and a revocation)", n)
	}
}

// TestAppleSecretRenewed: the client secret is made again before it
// expires, so a refresh hours after login authenticates.
func TestAppleSecretRenewed(t *testing.T) {
	app, apple, _ := newAppleApp(t, nil)
	c, _ := appleLogin(t, app)
	app.P.Advance(2 * time.Hour) // the access token (1 h) and the first secret (1 h) have expired
	if status, u := app.Me(t, c); status != http.StatusOK || u.Subject != appleUserSub {
		t.Fatalf("GET /me two hours later: %d %+v", status, u)
	}
	if got := app.P.Grants("refresh_token"); got != 1 {
		t.Fatalf("refresh grants = %d, want 1; log:\n%s", got, app.Logs)
	}
	s := apple.accepted()
	if len(s) != 2 || s[0].raw == s[1].raw || s[1].iat.Sub(s[0].iat) < 2*time.Hour {
		t.Errorf("client secrets accepted: %d, want 2, the second made for the refresh", len(s))
	}
}

// TestAppleWrongKey: a secret Apple cannot verify (another team's key
// ID, say) fails the login with 502, and the log says what was sent.
func TestAppleWrongKey(t *testing.T) {
	app, _, _ := newAppleApp(t, func(p *auth.Provider) {
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // not the key Apple has
		iss := p.Issuer
		*p = auth.Apple(p.ClientID, "TEAM123456", "KEY1234567", other)
		p.Issuer = iss
	})
	res, body, visited := apptest.FollowPosts(t, app.TLSBrowser(t), app.URL+"/auth/login")
	if res.StatusCode != http.StatusBadGateway {
		t.Errorf("login: status %d (%q) after %v, want 502", res.StatusCode, body, visited)
	}
	for _, want := range []string{"invalid_client", "client_secret_post with a minted client secret (ES256, kid", "KEY1234567", "TEAM123456"} {
		if !strings.Contains(app.Logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, app.Logs)
		}
	}
}

// TestAppleSettings: New refuses an Apple provider that cannot work, and
// says why.
func TestAppleSettings(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, tt := range []struct {
		name     string
		provider auth.Provider
		redirect string
		want     string
	}{
		{"http", auth.Apple("com.example.web", "TEAM123456", "KEY1234567", key), "http://127.0.0.1/auth/callback", "form_post needs an https RedirectURL"},
		{"no team", auth.Apple("com.example.web", "", "KEY1234567", key), "https://app.example/auth/callback", "team ID"},
		{"P-384 key", auth.Apple("com.example.web", "TEAM123456", "KEY1234567", p384), "https://app.example/auth/callback", "P-256"},
	} {
		_, err := auth.New(context.Background(), auth.Config{Providers: []auth.Provider{tt.provider}, RedirectURL: tt.redirect, CookieSecret: apptest.Secret})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
}
