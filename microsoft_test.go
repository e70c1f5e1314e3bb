package auth_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

// newMicrosoftApp serves the app with the Microsoft preset for tenant,
// pointed at a fake Entra (discovery) in front of authtest (tokens).
func newMicrosoftApp(t *testing.T, tenant string, opts auth.MicrosoftOptions) (*apptest.App, *fakeEntra) {
	t.Helper()
	op := authtest.NewProvider(authtest.Config{})
	t.Cleanup(op.Close)
	entra := newFakeEntra(t, op)
	app := apptest.NewProviders(t, op.Now, func(appURL string) []auth.Provider {
		op.AddRedirectURI(appURL + "/auth/callback")
		op.AddPostLogoutRedirectURI(appURL + "/")
		return []auth.Provider{entra.provider(tenant, opts)}
	}, nil)
	app.P = op
	return app, entra
}

func TestMicrosoftMultiTenant(t *testing.T) {
	for _, tt := range []struct {
		name        string
		tenant      string
		opts        auth.MicrosoftOptions
		tid, issTid string // the token's tid, and the tenant in its iss
		want        int
		reason      string // in the log when refused
	}{
		{"common, own tenant", "common", auth.MicrosoftOptions{}, tenantA, tenantA, http.StatusOK, ""},
		{"organizations, own tenant", "organizations", auth.MicrosoftOptions{}, tenantB, tenantB, http.StatusOK, ""},
		{"personal account", "common", auth.MicrosoftOptions{}, tenantMSA, tenantMSA, http.StatusOK, ""},
		{"personal account, organizations", "organizations", auth.MicrosoftOptions{}, tenantMSA, tenantMSA, http.StatusForbidden, "personal account"},
		{"iss of another tenant", "common", auth.MicrosoftOptions{}, tenantA, tenantB, http.StatusUnauthorized, "for its tenant"},
		{"iss is the template", "common", auth.MicrosoftOptions{}, tenantA, "{tenantid}", http.StatusUnauthorized, "for its tenant"},
		{"no tid", "common", auth.MicrosoftOptions{}, "", tenantA, http.StatusUnauthorized, "no valid tid"},
		{"allowed tenant", "organizations", auth.MicrosoftOptions{AllowedTenants: []string{strings.ToUpper(tenantA)}}, tenantA, tenantA, http.StatusOK, ""},
		{"tenant not allowed", "organizations", auth.MicrosoftOptions{AllowedTenants: []string{tenantA}}, tenantB, tenantB, http.StatusForbidden, "is not allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app, entra := newMicrosoftApp(t, tt.tenant, tt.opts)
			entra.issueAs(tt.tid, tt.issTid)
			c := app.P.Browser(t, "alice")
			res, body, visited := apptest.Follow(t, c, app.URL+"/auth/login?next=/me")
			if res.StatusCode != tt.want {
				t.Fatalf("login: status = %d (%q) after %v, want %d", res.StatusCode, body, visited, tt.want)
			}
			if tt.want != http.StatusOK {
				if !strings.Contains(app.Logs.String(), tt.reason) {
					t.Errorf("log does not give the reason %q:\n%s", tt.reason, app.Logs)
				}
				return
			}
			_, u := app.Me(t, c)
			var claims struct {
				Iss string `json:"iss"`
				Tid string `json:"tid"`
			}
			if err := u.DecodeClaims(&claims); err != nil || u.Provider != "microsoft" || u.Subject != "alice" || claims.Tid != tt.tid {
				t.Errorf("GET /me = %+v (claims %+v, err %v), want alice from microsoft in tenant %s", u, claims, err, tt.tid)
			}
		})
	}
}

func TestMicrosoftSingleTenant(t *testing.T) {
	for _, tt := range []struct {
		name, tenant, tid string // tid: the tenant the ID token comes from
		want              int
	}{
		{"tenant ID", tenantA, tenantA, http.StatusOK},
		{"tenant ID, token of another tenant", tenantA, tenantB, http.StatusUnauthorized},
		{"domain name", "contoso.onmicrosoft.com", tenantA, http.StatusOK},
		{"domain name, token of another tenant", "contoso.onmicrosoft.com", tenantB, http.StatusUnauthorized},
		{"consumers", "consumers", tenantMSA, http.StatusOK},
		{"consumers, token of a work tenant", "consumers", tenantA, http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app, entra := newMicrosoftApp(t, tt.tenant, auth.MicrosoftOptions{})
			entra.issueAs(tt.tid, "")
			res, body, visited := apptest.Follow(t, app.P.Browser(t, "alice"), app.URL+"/auth/login?next=/me")
			if res.StatusCode != tt.want {
				t.Errorf("login: status = %d (%q) after %v, want %d", res.StatusCode, body, visited, tt.want)
			}
			if tt.want != http.StatusOK && !strings.Contains(app.Logs.String(), "issued by a different provider") {
				t.Errorf("log does not say the token came from another tenant:\n%s", app.Logs)
			}
		})
	}
}

func TestMicrosoftDiscoveryIssuer(t *testing.T) {
	// The discovery document must name the configured issuer, the
	// template on the same host, or a tenant's issuer on the same host.
	op := authtest.NewProvider(authtest.Config{})
	t.Cleanup(op.Close)
	entra := newFakeEntra(t, op)
	for _, tt := range []struct {
		name   string
		issuer func(tenant string) string
		ok     bool
	}{
		{"template", func(string) string { return entra.URL + "/{tenantid}/v2.0" }, true},
		{"tenant issuer", func(string) string { return entra.URL + "/" + tenantB + "/v2.0" }, true},
		{"template on another host", func(string) string { return "https://evil.example/{tenantid}/v2.0" }, false},
		{"tenant issuer on another host", func(string) string { return "https://evil.example/" + tenantB + "/v2.0" }, false},
		{"not a tenant", func(string) string { return entra.URL + "/someone/v2.0" }, false},
		{"v1 issuer", func(string) string { return entra.URL + "/{tenantid}/" }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			entra.mu.Lock()
			entra.issuerOf = tt.issuer
			entra.mu.Unlock()
			_, err := auth.New(context.Background(), auth.Config{
				Providers:    []auth.Provider{entra.provider("common", auth.MicrosoftOptions{})},
				RedirectURL:  "http://127.0.0.1:1/auth/callback",
				CookieSecret: apptest.Secret,
			})
			if (err == nil) != tt.ok {
				t.Errorf("New: error = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestMicrosoftPreset(t *testing.T) {
	p := auth.Microsoft("", "id", "secret", auth.MicrosoftOptions{Offline: true})
	if p.Issuer != "https://login.microsoftonline.com/common/v2.0" || p.Name != "microsoft" {
		t.Errorf("Microsoft(\"\") = issuer %q name %q, want the common endpoint", p.Issuer, p.Name)
	}
	if got := strings.Join(p.Scopes, " "); got != "openid email profile offline_access" {
		t.Errorf("Microsoft Offline scopes = %q", got)
	}
	g := auth.Google("id", "secret", auth.GoogleOptions{})
	if g.Issuer != "https://accounts.google.com" || g.Name != "google" {
		t.Errorf("Google() = issuer %q name %q", g.Issuer, g.Name)
	}
	gh := auth.GitHub("id", "secret")
	if gh.Issuer != "" || gh.AuthURL != "https://github.com/login/oauth/authorize" || gh.TokenURL != "https://github.com/login/oauth/access_token" || gh.UserURL != "https://api.github.com/user" {
		t.Errorf("GitHub() endpoints = %q %q %q", gh.AuthURL, gh.TokenURL, gh.UserURL)
	}
}

// TestMicrosoftEmailVerified: Entra's email is not verified unless the
// token's xms_edov claim says its domain owner is, whatever
// email_verified says.
func TestMicrosoftEmailVerified(t *testing.T) {
	for _, tt := range []struct {
		name  string
		claim map[string]any
		want  bool
	}{
		{"email_verified true, no xms_edov", map[string]any{"email_verified": true}, false},
		{"xms_edov true", map[string]any{"xms_edov": true}, true},
		{"xms_edov false", map[string]any{"xms_edov": false, "email_verified": true}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app, entra := newMicrosoftApp(t, tenantA, auth.MicrosoftOptions{})
			entra.op.FailNext(authtest.Fault{IDToken: func(c map[string]any) {
				c["iss"] = entra.URL + "/" + tenantA + "/v2.0"
				c["tid"] = tenantA
				for k, v := range tt.claim {
					c[k] = v
				}
			}})
			c := app.P.Browser(t, "alice")
			u := app.LoginAt(t, c, "/auth/login")
			if u.EmailVerified != tt.want || u.Email == "" {
				t.Errorf("EmailVerified = %v (email %q), want %v", u.EmailVerified, u.Email, tt.want)
			}
		})
	}
}
