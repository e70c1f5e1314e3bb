package auth_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
)

// fakeGitHub behaves like github.com and api.github.com on the points the
// GitHub preset depends on; each is a fact from GitHub's documentation:
//
//   - "Authorizing OAuth apps"
//     (https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps):
//     GET /login/oauth/authorize redirects back with code and state;
//     POST /login/oauth/access_token takes client_id and client_secret as
//     parameters and "By default, the response takes the following form:
//     access_token=...&scope=...&token_type=bearer"; JSON only with
//     "Accept: application/json". OAuth app tokens carry no expiry.
//   - "Troubleshooting OAuth app access token request errors": errors such
//     as bad_verification_code come in the body, in the format the Accept
//     header asks for (GitHub sends them with 200 OK).
//   - "Refreshing user access tokens": a GitHub App with expiring tokens
//     gets expires_in (28800), refresh_token and refresh_token_expires_in;
//     grant_type=refresh_token returns a new pair and the old refresh token
//     stops working (bad_refresh_token).
//   - "Getting started with the REST API": "Requests with no User-Agent
//     header will be rejected"; tokens go in Authorization as "Bearer" or
//     "token".
//   - "Get the authenticated user" (GET /user): id, login, name, email (null
//     unless public), avatar_url. "List email addresses for the
//     authenticated user" (GET /user/emails, needs user:email): email,
//     primary, verified, visibility.
//   - "Delete an app token": DELETE /applications/{client_id}/token with the
//     client ID and secret as Basic credentials and {"access_token"} as the
//     body; 204.
//
// The REST API is served under /api, like GitHub Enterprise Server's
// /api/v3.
type fakeGitHub struct {
	*httptest.Server
	ClientID, ClientSecret string
	now                    func() time.Time

	mu       sync.Mutex
	user     map[string]any
	emails   []map[string]any
	expiring bool // a GitHub App with expiring user tokens
	codes    map[string]ghCode
	access   map[string]ghToken
	refresh  map[string]string // refresh token -> scope
	log      []ghRequest
	grants   map[string]int
	revoked  int
}

type ghCode struct {
	redirectURI, challenge, scope string
}

type ghToken struct {
	scope   string
	expires time.Time // zero: never
}

// ghRequest is one request fakeGitHub received.
type ghRequest struct {
	Method, Path      string
	Accept, UserAgent string
	Form              url.Values // query and form, secrets included
	ResponseType      string     // Content-Type of the answer
}

func newFakeGitHub(t testing.TB, now func() time.Time) *fakeGitHub {
	t.Helper()
	g := &fakeGitHub{
		ClientID: "Iv1.test-client", ClientSecret: "gh-test-secret", now: now,
		user: map[string]any{
			"login": "octocat", "id": 583231, "name": "The Octocat", "email": nil,
			"avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
			"html_url":   "https://github.com/octocat",
		},
		emails: []map[string]any{
			{"email": "octocat@users.noreply.github.com", "primary": false, "verified": true, "visibility": nil},
			{"email": "octocat@github.com", "primary": true, "verified": true, "visibility": "private"},
		},
		codes: map[string]ghCode{}, access: map[string]ghToken{}, refresh: map[string]string{}, grants: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", g.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", g.token)
	mux.HandleFunc("GET /api/user", g.api(g.getUser))
	mux.HandleFunc("GET /api/user/emails", g.api(g.getEmails))
	mux.HandleFunc("DELETE /api/applications/{client_id}/token", g.deleteToken)
	g.Server = httptest.NewServer(mux)
	t.Cleanup(g.Close)
	return g
}

// provider returns the GitHub preset pointed at the fake.
func (g *fakeGitHub) provider() auth.Provider {
	p := auth.GitHub(g.ClientID, g.ClientSecret)
	p.AuthURL = g.URL + "/login/oauth/authorize"
	p.TokenURL = g.URL + "/login/oauth/access_token"
	p.UserURL = g.URL + "/api/user"
	return p
}

func (g *fakeGitHub) record(r *http.Request, responseType string) {
	_ = r.ParseForm()
	g.mu.Lock()
	g.log = append(g.log, ghRequest{Method: r.Method, Path: r.URL.Path, Accept: r.Header.Get("Accept"),
		UserAgent: r.Header.Get("User-Agent"), Form: r.Form, ResponseType: responseType})
	g.mu.Unlock()
}

// requests returns the requests received at path.
func (g *fakeGitHub) requests(path string) []ghRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []ghRequest
	for _, r := range g.log {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

func (g *fakeGitHub) setUser(edit func(user map[string]any, emails *[]map[string]any)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	edit(g.user, &g.emails)
}

func (g *fakeGitHub) grantCount(grant string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.grants[grant]
}

func (g *fakeGitHub) revocations() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.revoked
}

func ghRandom(prefix string) string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func (g *fakeGitHub) authorize(w http.ResponseWriter, r *http.Request) {
	g.record(r, "")
	q := r.URL.Query()
	redirect := q.Get("redirect_uri")
	if q.Get("client_id") != g.ClientID || redirect == "" {
		http.Error(w, "unknown application", http.StatusNotFound)
		return
	}
	if q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256" {
		http.Error(w, "unsupported code_challenge_method", http.StatusBadRequest)
		return
	}
	code := ghRandom("")
	g.mu.Lock()
	g.codes[code] = ghCode{redirectURI: redirect, challenge: q.Get("code_challenge"), scope: q.Get("scope")}
	g.mu.Unlock()
	back, _ := url.Parse(redirect)
	bq := back.Query()
	bq.Set("code", code)
	bq.Set("state", q.Get("state"))
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// answer writes a token endpoint response as GitHub does: form-encoded
// unless the request accepts JSON, and 200 OK even for errors.
func (g *fakeGitHub) answer(w http.ResponseWriter, r *http.Request, v url.Values) {
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		m := map[string]any{}
		for k := range v {
			m[k] = v.Get(k)
			if k == "expires_in" || k == "refresh_token_expires_in" {
				var n int
				fmt.Sscan(v.Get(k), &n)
				m[k] = n
			}
		}
		g.record(r, "application/json")
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		json.NewEncoder(w).Encode(m)
		return
	}
	g.record(r, "application/x-www-form-urlencoded")
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	io.WriteString(w, v.Encode())
}

func ghError(code, desc string) url.Values {
	return url.Values{"error": {code}, "error_description": {desc}, "error_uri": {"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#" + code}}
}

func (g *fakeGitHub) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	g.answer(w, r, g.grant(r.PostForm))
}

// grant runs a token request and returns the response parameters.
func (g *fakeGitHub) grant(f url.Values) url.Values {
	if f.Get("client_id") != g.ClientID || f.Get("client_secret") != g.ClientSecret {
		return ghError("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var scope, grant string
	switch f.Get("grant_type") {
	case "", "authorization_code":
		grant = "authorization_code"
		c, ok := g.codes[f.Get("code")]
		delete(g.codes, f.Get("code"))
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		switch {
		case !ok:
			return ghError("bad_verification_code", "The code passed is incorrect or expired.")
		case f.Get("redirect_uri") != "" && f.Get("redirect_uri") != c.redirectURI:
			return ghError("redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.")
		case c.challenge != "" && base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge:
			return ghError("bad_verification_code", "The code passed is incorrect or expired.")
		}
		scope = c.scope
	case "refresh_token":
		grant = "refresh_token"
		s, ok := g.refresh[f.Get("refresh_token")]
		delete(g.refresh, f.Get("refresh_token")) // used once
		if !ok {
			return ghError("bad_refresh_token", "The refresh token passed is incorrect or expired.")
		}
		scope = s
	default:
		return ghError("unsupported_grant_type", "The grant type is not supported.")
	}
	g.grants[grant]++
	v := url.Values{"scope": {strings.ReplaceAll(scope, " ", ",")}, "token_type": {"bearer"}}
	if g.expiring {
		at, rt := ghRandom("ghu_"), ghRandom("ghr_")
		g.access[at] = ghToken{scope: scope, expires: g.now().Add(8 * time.Hour)}
		g.refresh[rt] = scope
		v.Set("access_token", at)
		v.Set("expires_in", "28800")
		v.Set("refresh_token", rt)
		v.Set("refresh_token_expires_in", "15897600")
	} else {
		at := ghRandom("gho_")
		g.access[at] = ghToken{scope: scope}
		v.Set("access_token", at)
	}
	return v
}

// api wraps a REST API handler with GitHub's User-Agent rule and token
// check.
func (g *fakeGitHub) api(h func(w http.ResponseWriter, r *http.Request, tok ghToken)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g.record(r, "application/json")
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if r.Header.Get("User-Agent") == "" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"message":"Request forbidden by administrative rules. Please make sure your request has a User-Agent header"}`)
			return
		}
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			raw, _ = strings.CutPrefix(r.Header.Get("Authorization"), "token ")
		}
		g.mu.Lock()
		tok, found := g.access[raw]
		g.mu.Unlock()
		if !found || (!tok.expires.IsZero() && !g.now().Before(tok.expires)) {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"message":"Bad credentials"}`)
			return
		}
		h(w, r, tok)
	}
}

func (g *fakeGitHub) getUser(w http.ResponseWriter, r *http.Request, _ ghToken) {
	g.mu.Lock()
	defer g.mu.Unlock()
	json.NewEncoder(w).Encode(g.user)
}

func (g *fakeGitHub) getEmails(w http.ResponseWriter, r *http.Request, tok ghToken) {
	if !strings.Contains(" "+tok.scope+" ", " user:email ") && !strings.Contains(" "+tok.scope+" ", " user ") {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"Not Found"}`)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	json.NewEncoder(w).Encode(g.emails)
}

func (g *fakeGitHub) deleteToken(w http.ResponseWriter, r *http.Request) {
	g.record(r, "")
	id, secret, ok := r.BasicAuth()
	if !ok || id != g.ClientID || secret != g.ClientSecret || r.PathValue("client_id") != g.ClientID {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		w.WriteHeader(http.StatusUnprocessableEntity)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.access[body.AccessToken]; !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	delete(g.access, body.AccessToken)
	g.revoked++
	w.WriteHeader(http.StatusNoContent)
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
