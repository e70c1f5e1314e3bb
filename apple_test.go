package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// newAppleApp serves the app over https with the Apple preset, pointed at
// a fake Apple. The Recorder receives the Identity OnLogin sees.
func newAppleApp(t *testing.T, edit func(p *auth.Provider)) (*apptest.App, *fakeApple, *apptest.Recorder[auth.Identity]) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // a .p8 key is an ECDSA P-256 key
	if err != nil {
		t.Fatal(err)
	}
	apple := newFakeApple(t, "TEAM123456", "KEY1234567", &key.PublicKey)
	seen := &apptest.Recorder[auth.Identity]{}
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
				seen.Add(*u)
				return nil
			},
		}
	}, nil)
	app.P = apple.op
	return app, apple, seen
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
	if got := seen.Last(); got.Name != "Jane Appleseed" || got.Subject != appleUserSub {
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
	if got := seen.Last(); got.Name != "" {
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

// fakeApple behaves like appleid.apple.com on the points the Apple preset
// depends on; each is a fact from Apple's documentation:
//
//   - The discovery document (https://appleid.apple.com/.well-known/openid-configuration)
//     names the issuer https://appleid.apple.com, the endpoints
//     /auth/authorize, /auth/token, /auth/revoke and /auth/keys, no
//     userinfo endpoint, response_modes_supported query, fragment and
//     form_post, token_endpoint_auth_methods_supported client_secret_post
//     only, scopes openid, email and name, and RS256 ID tokens.
//   - "Request an authorization to the Sign in with Apple server" and
//     "Incorporating Sign in with Apple into other platforms": asking for
//     the name or email scope requires response_mode=form_post; the
//     answer posts code and state to the redirect URI and, at the user's
//     first authorization of the app only, user: a JSON object
//     {"name":{"firstName","lastName"},"email"}.
//   - "Generate and validate tokens", "Creating a client secret": the
//     token endpoint takes client_id and client_secret in the form; the
//     secret is a JWT signed ES256 with the team's key (kid its key ID),
//     iss the team ID, sub the client ID, aud https://appleid.apple.com,
//     iat, and exp at most 15777000 s after iat; anything else is
//     invalid_client. The same grants serve the code and refresh.
//   - "Revoke tokens": /auth/revoke takes client_id, client_secret,
//     token and token_type_hint.
//   - The ID token ("Authenticating users with Sign in with Apple") has
//     iss https://appleid.apple.com, aud the client ID, sub, email, and
//     email_verified and is_private_email as the strings "true" or
//     "false"; no name.
//
// An authtest provider behind it issues the codes and tokens and signs
// the ID tokens (whose iss and string booleans the fake sets through
// FailNext, as Apple would have them).
type fakeApple struct {
	*httptest.Server
	op                        *authtest.Provider
	servicesID, teamID, keyID string
	key                       *ecdsa.PublicKey

	mu         sync.Mutex
	signIn     string               // the user who signs in at the authorization endpoint
	names      map[string][2]string // first and last names, by sub
	authorized map[string]bool      // users who have authorized the app: no user field again
	secrets    []appleSecret        // client secrets accepted
	revoked    int
}

// appleSecret is a client secret the fake accepted.
type appleSecret struct {
	raw      string
	iat, exp time.Time
}

const appleUserSub = "001234.0a1b2c3d4e5f60718293a4b5c6d7e8f9.1234"

func newFakeApple(t *testing.T, teamID, keyID string, key *ecdsa.PublicKey) *fakeApple {
	t.Helper()
	op := authtest.NewProvider(authtest.Config{
		ClientID: "com.example.web", ClientSecret: "behind-the-fake",
		Users:       []authtest.User{{Subject: appleUserSub, Email: "x7k2q9p4mz@privaterelay.appleid.com", EmailVerified: true}},
		AutoApprove: appleUserSub,
	})
	t.Cleanup(op.Close)
	a := &fakeApple{
		op: op, servicesID: op.ClientID, teamID: teamID, keyID: keyID, key: key,
		signIn: appleUserSub, names: map[string][2]string{appleUserSub: {"Jane", "Appleseed"}}, authorized: map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", a.discovery)
	mux.HandleFunc("GET /auth/authorize", a.authorize)
	mux.HandleFunc("POST /auth/token", a.forward("/token"))
	mux.HandleFunc("POST /auth/revoke", a.forward("/revoke"))
	a.Server = httptest.NewServer(mux)
	t.Cleanup(a.Close)
	return a
}

// provider returns the Apple preset pointed at the fake.
func (a *fakeApple) provider(key *ecdsa.PrivateKey) auth.Provider {
	p := auth.Apple(a.servicesID, a.teamID, a.keyID, key)
	p.Issuer = a.URL
	return p
}

func (a *fakeApple) discovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                a.URL,
		"authorization_endpoint":                a.URL + "/auth/authorize",
		"token_endpoint":                        a.URL + "/auth/token",
		"revocation_endpoint":                   a.URL + "/auth/revoke",
		"jwks_uri":                              a.op.URL + "/jwks",
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "email", "name"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post"},
		"claims_supported":                      []string{"aud", "email", "email_verified", "exp", "iat", "is_private_email", "iss", "nonce", "nonce_supported", "real_user_status", "sub", "transfer_sub"},
	})
}

// authorize answers as Apple: it signs a.signIn in (through authtest) and
// posts the code back, with the user's name and email at their first
// authorization.
func (a *fakeApple) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	scopes := strings.Fields(q.Get("scope"))
	if (slices.Contains(scopes, "name") || slices.Contains(scopes, "email")) && q.Get("response_mode") != "form_post" {
		http.Error(w, "invalid_request: response_mode must be form_post when name or email scope is requested.", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	sub := a.signIn
	a.mu.Unlock()
	back := url.Values{}
	for k, v := range q {
		back[k] = v
	}
	back.Del("response_mode")
	back.Set("login_hint", sub)
	c := a.op.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.Get(a.op.URL + "/authorize?" + back.Encode())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	res.Body.Close()
	loc, err := res.Location()
	if err != nil {
		http.Error(w, "authorization failed", http.StatusBadRequest)
		return
	}
	answer := url.Values{}
	for _, k := range []string{"code", "state", "error", "error_description"} {
		if v := loc.Query().Get(k); v != "" {
			answer.Set(k, v)
		}
	}
	a.mu.Lock()
	first := !a.authorized[sub] && answer.Has("code")
	a.authorized[sub] = a.authorized[sub] || answer.Has("code")
	name := a.names[sub]
	a.mu.Unlock()
	if first && (slices.Contains(scopes, "name") || slices.Contains(scopes, "email")) {
		user := map[string]any{}
		if slices.Contains(scopes, "name") {
			user["name"] = map[string]string{"firstName": name[0], "lastName": name[1]}
		}
		if slices.Contains(scopes, "email") {
			user["email"] = "x7k2q9p4mz@privaterelay.appleid.com"
		}
		b, _ := json.Marshal(user)
		answer.Set("user", string(b))
	}
	redirect := loc.Scheme + "://" + loc.Host + loc.Path
	if q.Get("response_mode") != "form_post" {
		http.Redirect(w, r, redirect+"?"+answer.Encode(), http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><title>Sign in with Apple</title><form method="post" action="%s">`, html.EscapeString(redirect))
	for k := range answer {
		fmt.Fprintf(w, `<input type="hidden" name="%s" value="%s">`, html.EscapeString(k), html.EscapeString(answer.Get(k)))
	}
	io.WriteString(w, `</form><script>document.forms[0].submit()</script>`)
}

// forward checks the client secret of a token or revocation request and
// passes it to authtest's endpoint path with authtest's credentials.
func (a *fakeApple) forward(path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		form := r.PostForm
		if _, _, basic := r.BasicAuth(); basic || form.Get("client_id") != a.servicesID || !a.validSecret(form.Get("client_secret")) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		form.Set("client_id", a.op.ClientID)
		form.Set("client_secret", a.op.ClientSecret)
		if path == "/token" {
			a.op.FailNext(authtest.Fault{IDToken: func(c map[string]any) {
				c["iss"] = a.URL
				c["email_verified"] = "true"
				c["is_private_email"] = "true"
				delete(c, "sid")
				delete(c, "azp")
			}})
		} else {
			a.mu.Lock()
			a.revoked++
			a.mu.Unlock()
		}
		res, err := a.op.Client().PostForm(a.op.URL+path, form)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		w.Header().Set("Content-Type", res.Header.Get("Content-Type"))
		w.WriteHeader(res.StatusCode)
		io.Copy(w, res.Body)
	}
}

// validSecret checks a client secret as Apple does ("Creating a client
// secret"), and keeps it.
func (a *fakeApple) validSecret(raw string) bool {
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(jws.Signatures) != 1 || jws.Signatures[0].Header.KeyID != a.keyID {
		return false
	}
	payload, err := jws.Verify(a.key)
	if err != nil {
		return false
	}
	var c struct {
		Iss, Sub string
		Aud      any
		Iat, Exp int64
	}
	if json.Unmarshal(payload, &c) != nil {
		return false
	}
	now := a.op.Now()
	iat, exp := time.Unix(c.Iat, 0), time.Unix(c.Exp, 0)
	if c.Iss != a.teamID || c.Sub != a.servicesID || c.Aud != "https://appleid.apple.com" ||
		c.Iat == 0 || iat.After(now) || !now.Before(exp) || exp.Sub(iat) > 15777000*time.Second {
		return false
	}
	a.mu.Lock()
	a.secrets = append(a.secrets, appleSecret{raw, iat, exp})
	a.mu.Unlock()
	return true
}

func (a *fakeApple) accepted() []appleSecret {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.secrets)
}

func (a *fakeApple) revocations() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.revoked
}
