package auth_test

import (
	"crypto/ecdsa"
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

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
)

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
