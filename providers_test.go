package auth_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

// newTwoProviderApp mounts an OpenID Connect provider (authtest, "corp")
// and a plain OAuth 2.0 one (the GitHub preset on a fake GitHub) at once,
// all on the authtest clock.
func newTwoProviderApp(t *testing.T, edit func(*auth.Config)) (*apptest.App, *authtest.Provider, *fakeGitHub) {
	t.Helper()
	op := authtest.NewProvider(authtest.Config{})
	t.Cleanup(op.Close)
	gh := newFakeGitHub(t, op.Now)
	gh.expiring = true
	app := apptest.NewProviders(t, op.Now, func(appURL string) []auth.Provider {
		op.AddRedirectURI(appURL + "/auth/callback/corp")
		op.AddPostLogoutRedirectURI(appURL + "/")
		return []auth.Provider{
			{Name: "corp", DisplayName: "Corp <SSO>", Issuer: op.URL, ClientID: op.ClientID, ClientSecret: op.ClientSecret},
			gh.provider(),
		}
	}, edit)
	app.P = op
	return app, op, gh
}

func TestTwoProviders(t *testing.T) {
	app, op, gh := newTwoProviderApp(t, nil)

	// Each provider signs in its own user, and the session says which.
	alice := op.Browser(t, "alice")
	if u := app.LoginAt(t, alice, "/auth/login/corp"); u.Provider != "corp" || u.Subject != "alice" || u.Email != "alice@example.com" {
		t.Errorf("login with corp: /me = %+v, want alice from corp", u)
	}
	octo := apptest.Browser(t)
	if u := app.LoginAt(t, octo, "/auth/login/github"); u.Provider != "github" || u.Subject != "583231" {
		t.Errorf("login with github: /me = %+v, want octocat from github", u)
	}
	// Each provider got its own redirect URI.
	if got := gh.requests("/login/oauth/authorize")[0].Form.Get("redirect_uri"); got != app.URL+"/auth/callback/github" {
		t.Errorf("GitHub redirect_uri = %q, want %s/auth/callback/github", got, app.URL)
	}

	// Each provider's user API, for auth.Client.
	if got, want := app.M.UserinfoURL("corp"), op.URL+"/userinfo"; got != want {
		t.Errorf("UserinfoURL(corp) = %q, want %q", got, want)
	}
	if got, want := app.M.UserinfoURL("github"), gh.provider().UserURL; got != want {
		t.Errorf("UserinfoURL(github) = %q, want %q", got, want)
	}

	// Refresh goes to the provider that signed the user in.
	op.Advance(8*time.Hour + time.Minute)
	for _, c := range []*http.Client{alice, octo} {
		if status, _ := app.Me(t, c); status != http.StatusOK {
			t.Errorf("GET /me after the tokens expired: status = %d, want 200", status)
		}
	}
	if a, g := op.Grants("refresh_token"), gh.grantCount("refresh_token"); a != 1 || g != 1 {
		t.Errorf("refresh grants: corp %d, github %d; want 1 each", a, g)
	}

	// Logout too: GitHub deletes its token, corp ends its session.
	res, _ := apptest.Get(t, octo, app.URL+"/auth/logout")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != app.URL+"/" || gh.revocations() != 1 {
		t.Errorf("github logout: %d to %q, %d GitHub revocations; want 303 to / and 1", res.StatusCode, res.Header.Get("Location"), gh.revocations())
	}
	res, _ = apptest.Get(t, alice, app.URL+"/auth/logout")
	if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, op.URL+"/end_session?") {
		t.Errorf("corp logout redirects to %q, want corp's end_session endpoint", loc)
	}
}

func TestTwoProvidersCrossedCallback(t *testing.T) {
	// A callback for one provider cannot complete a login started with
	// the other: the flow cookie names the provider the login started
	// with, and the code is never sent to the other's token endpoint.
	for _, tt := range []struct {
		name, start, deliver string
	}{
		{"github answer at corp callback", "github", "corp"},
		{"corp answer at github callback", "corp", "github"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app, op, gh := newTwoProviderApp(t, nil)
			c := op.Browser(t, "alice")
			cb := app.CallbackURL(t, c, "/auth/login/"+tt.start)
			if cb.Path != "/auth/callback/"+tt.start {
				t.Fatalf("%s sent the browser back to %s", tt.start, cb.Path)
			}
			cb.Path = "/auth/callback/" + tt.deliver
			res, _ := apptest.Get(t, c, cb.String())
			if res.StatusCode != http.StatusBadRequest {
				t.Errorf("GET %s: status = %d, want 400", cb.Path, res.StatusCode)
			}
			if status, _ := app.Me(t, c); status != http.StatusUnauthorized {
				t.Errorf("GET /me: status = %d, want 401", status)
			}
			if a, g := op.Grants("authorization_code"), gh.grantCount("authorization_code"); a != 0 || g != 0 {
				t.Errorf("code grants: corp %d, github %d; want none", a, g)
			}
			if !strings.Contains(app.Logs.String(), "another provider") {
				t.Errorf("log does not give the reason:\n%s", app.Logs)
			}
		})
	}
}

func TestTwoProvidersChooser(t *testing.T) {
	app, _, _ := newTwoProviderApp(t, nil)
	c := apptest.Browser(t)

	// RequireLogin sends browsers to LoginPath, which offers both.
	res, _ := apptest.Get(t, c, app.URL+"/me?x=1", "Accept", "text/html")
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/auth/login?next=%2Fme%3Fx%3D1" {
		t.Fatalf("GET /me anonymous: %d to %q, want 302 to the login page", res.StatusCode, res.Header.Get("Location"))
	}
	res, body := apptest.Get(t, c, app.URL+res.Header.Get("Location"))
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /auth/login: %d %s, want an HTML page", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`href="/auth/login/corp?next=%2fme%3fx%3d1"`,
		`href="/auth/login/github?next=%2fme%3fx%3d1"`,
		`Sign in with Corp &lt;SSO&gt;`,
		`Sign in with GitHub`,
	} {
		if !strings.Contains(strings.ToLower(body), strings.ToLower(want)) {
			t.Errorf("login page lacks %s:\n%s", want, body)
		}
	}
	if res.Header.Get("Cache-Control") != "no-store" || res.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("login page headers %v, want no-store and a CSP", res.Header)
	}
	// The plain callback path belongs to no provider.
	if res, _ := apptest.Get(t, c, app.URL+"/auth/callback?code=x&state=0123456789abcdef0123"); res.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /auth/callback with several providers: status = %d, want 400", res.StatusCode)
	}
}

func TestPlainOAuth2Provider(t *testing.T) {
	// Any plain OAuth 2.0 provider: manual endpoints and a mapping from
	// its user API's JSON (here GitHub's endpoints, with no preset).
	for _, tt := range []struct {
		name    string
		mapUser func(json.RawMessage) (map[string]any, error)
		want    auth.Identity
		status  int
	}{
		{"default mapping", nil, auth.Identity{Provider: "octo", Subject: "583231", Name: "The Octocat"}, http.StatusOK},
		{"custom mapping", func(b json.RawMessage) (map[string]any, error) {
			var u struct {
				ID    int64  `json:"id"`
				Login string `json:"login"`
			}
			err := json.Unmarshal(b, &u)
			return map[string]any{"sub": "gh-" + strconv.FormatInt(u.ID, 10), "name": u.Login}, err
		}, auth.Identity{Provider: "octo", Subject: "gh-583231", Name: "octocat"}, http.StatusOK},
		{"mapping refuses", func(json.RawMessage) (map[string]any, error) {
			return nil, errors.New("not in the org")
		}, auth.Identity{}, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := &apptest.Clock{}
			gh := newFakeGitHub(t, clk.Now)
			app := apptest.NewProviders(t, clk.Now, func(string) []auth.Provider {
				return []auth.Provider{{
					Name:     "octo",
					ClientID: gh.ClientID, ClientSecret: gh.ClientSecret,
					AuthURL:  gh.URL + "/login/oauth/authorize",
					TokenURL: gh.URL + "/login/oauth/access_token",
					UserURL:  gh.URL + "/api/user",
					MapUser:  tt.mapUser,
				}}
			}, nil)
			c := apptest.Browser(t)
			res, body, visited := apptest.Follow(t, c, app.URL+"/auth/login?next=/me")
			if res.StatusCode != tt.status {
				t.Fatalf("login: status = %d (%q) after %v, want %d", res.StatusCode, body, visited, tt.status)
			}
			if tt.status != http.StatusOK {
				return
			}
			_, u := app.Me(t, c)
			if u.Provider != tt.want.Provider || u.Subject != tt.want.Subject || u.Name != tt.want.Name {
				t.Errorf("GET /me = %+v, want %+v", u, tt.want)
			}
			if q := gh.requests("/login/oauth/authorize")[0].Form; q.Has("scope") || q.Has("nonce") || q.Get("code_challenge_method") != "S256" {
				t.Errorf("authorize query %v: want no scope, no nonce, PKCE S256", q)
			}
		})
	}
}

func TestProvidersConfigErrors(t *testing.T) {
	op := authtest.NewProvider(authtest.Config{})
	t.Cleanup(op.Close)
	corp := auth.Provider{Name: "corp", Issuer: op.URL, ClientID: op.ClientID, ClientSecret: op.ClientSecret}
	plain := auth.Provider{Name: "plain", ClientID: "c", ClientSecret: "s", AuthURL: "https://p.example/a", TokenURL: "https://p.example/t", UserURL: "https://p.example/u"}
	good := auth.Config{Providers: []auth.Provider{corp, plain}, RedirectURL: "http://127.0.0.1:1/auth/callback", CookieSecret: apptest.Secret}
	testConfigs(t, good, []configCase{
		{"good", func(*auth.Config) {}, ""},
		{"issuer and providers", func(c *auth.Config) { c.Issuer = op.URL }, "not in Config"},
		{"client ID and providers", func(c *auth.Config) { c.ClientID = "x" }, "not in Config"},
		{"no name", func(c *auth.Config) { c.Providers[1].Name = "" }, "Providers[1].Name is required"},
		{"bad name", func(c *auth.Config) { c.Providers[0].Name = "Corp" }, "lowercase"},
		{"long name", func(c *auth.Config) { c.Providers[0].Name = strings.Repeat("a", 33) }, "at most 32"},
		{"same name", func(c *auth.Config) { c.Providers[1].Name = "corp" }, `another provider is named "corp"`},
		{"no client ID", func(c *auth.Config) { c.Providers[1].ClientID = "" }, "Providers[1].ClientID is required"},
		{"no user URL", func(c *auth.Config) { c.Providers[1].UserURL = "" }, "Providers[1].UserURL is required"},
		{"no client secret", func(c *auth.Config) { c.Providers[1].ClientSecret = "" }, "Providers[1].ClientSecret is required"},
		{"no issuer nor endpoints", func(c *auth.Config) { c.Providers[0].Issuer = "" }, "Providers[0].Issuer is required"},
		{"issuer and endpoints", func(c *auth.Config) { c.Providers[0].AuthURL = "https://p.example/a" }, "not both"},
		{"relative endpoint", func(c *auth.Config) { c.Providers[1].TokenURL = "/token" }, "Providers[1].TokenURL: \"/token\" is not an absolute"},
		{"reserved param", func(c *auth.Config) { c.Providers[1].AuthParams = map[string]string{"state": "x"} }, `Providers[1].AuthParams may not set "state"`},
		{"path taken", func(c *auth.Config) { c.RedirectURL = "http://127.0.0.1:1/auth"; c.Providers[1].Name = "logout" }, "already taken"},
		{"issuer mismatch", func(c *auth.Config) { c.Providers[0].Issuer = op.URL + "/" }, "Providers[0].Issuer: discover"},
	})
}

func TestSingleProviderPaths(t *testing.T) {
	// One entry in Providers keeps the plain paths, and its name.
	op := authtest.NewProvider(authtest.Config{})
	t.Cleanup(op.Close)
	app := apptest.NewProviders(t, op.Now, func(appURL string) []auth.Provider {
		op.AddRedirectURI(appURL + "/auth/callback")
		return []auth.Provider{{Name: "corp", Issuer: op.URL, ClientID: op.ClientID, ClientSecret: op.ClientSecret}}
	}, nil)
	if u := app.LoginAt(t, op.Browser(t, "bob"), "/auth/login"); u.Provider != "corp" || u.Subject != "bob" {
		t.Errorf("GET /me = %+v, want bob from corp", u)
	}
	if res, _ := apptest.Get(t, apptest.Browser(t), app.URL+"/auth/login/corp"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /auth/login/corp with one provider: status = %d, want the app's 404", res.StatusCode)
	}
}
