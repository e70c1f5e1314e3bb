package auth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

// Entra ID facts the Microsoft preset depends on ("OpenID Connect on the
// Microsoft identity platform", "Find your app's OpenID configuration
// document URI": https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc):
// the discovery document of https://login.microsoftonline.com/{tenant}/v2.0
// names the issuer https://login.microsoftonline.com/{tenantid}/v2.0, with
// the literal placeholder, for the multi-tenant "common" and
// "organizations"; a tenant's own issuer (by tenant ID) for a tenant ID or
// domain, and for "consumers" the issuer of the personal-accounts tenant
// 9188040d-6c67-4c5b-b112-36a304b66dad. ID tokens carry the user's tenant
// in tid and its issuer in iss ("ID token claims reference").
const (
	tenantA   = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	tenantB   = "0b3c8f7e-1111-4d2a-9c3b-5e6f7a8b9c0d"
	tenantMSA = "9188040d-6c67-4c5b-b112-36a304b66dad"
)

// fakeEntra serves Entra-shaped discovery documents in front of an
// authtest provider, which signs the ID tokens (their iss is set by a
// fault, as Entra would set it).
type fakeEntra struct {
	*httptest.Server
	op *authtest.Provider

	mu          sync.Mutex
	issuerOf    func(tenant string) string // overrides the document's issuer when set
	domainToTID map[string]string
}

func newFakeEntra(t testing.TB, op *authtest.Provider) *fakeEntra {
	t.Helper()
	e := &fakeEntra{op: op, domainToTID: map[string]string{"contoso.onmicrosoft.com": tenantA}}
	e.Server = httptest.NewServer(http.HandlerFunc(e.discovery))
	t.Cleanup(e.Close)
	return e
}

func (e *fakeEntra) discovery(w http.ResponseWriter, r *http.Request) {
	tenant, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/v2.0/.well-known/openid-configuration")
	if !ok || strings.Contains(tenant, "/") {
		http.NotFound(w, r)
		return
	}
	res, err := e.op.Client().Get(e.op.URL + "/.well-known/openid-configuration")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	e.mu.Lock()
	issuerOf, tid := e.issuerOf, e.domainToTID[tenant]
	e.mu.Unlock()
	switch {
	case issuerOf != nil:
		doc["issuer"] = issuerOf(tenant)
	case tenant == "common" || tenant == "organizations":
		doc["issuer"] = e.URL + "/{tenantid}/v2.0"
	case tenant == "consumers":
		doc["issuer"] = e.URL + "/" + tenantMSA + "/v2.0"
	case tid != "":
		doc["issuer"] = e.URL + "/" + tid + "/v2.0"
	default:
		doc["issuer"] = e.URL + "/" + tenant + "/v2.0"
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(doc)
}

// provider returns the Microsoft preset pointed at the fake.
func (e *fakeEntra) provider(tenant string, opts auth.MicrosoftOptions) auth.Provider {
	p := auth.Microsoft(tenant, e.op.ClientID, e.op.ClientSecret, opts)
	p.Issuer = e.URL + "/" + tenant + "/v2.0"
	return p
}

// issueAs makes the next ID token look issued by Entra for tenant tid
// (iss issTenant's issuer; tid itself when issTenant is "").
func (e *fakeEntra) issueAs(tid, issTenant string) {
	if issTenant == "" {
		issTenant = tid
	}
	e.op.FailNext(authtest.Fault{IDToken: func(c map[string]any) {
		c["iss"] = e.URL + "/" + issTenant + "/v2.0"
		if tid == "" {
			delete(c, "tid")
		} else {
			c["tid"] = tid
		}
	}})
}
