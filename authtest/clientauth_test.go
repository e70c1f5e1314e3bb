package authtest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

const (
	assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// longSecret is long enough for HS256 (RFC 7518 3.2).
	longSecret = "a client secret of at least 32 bytes, for HS256"
)

// clientKeys are the test client's keys: one generation per test binary.
var clientKeys = sync.OnceValue(func() (k struct {
	rsa, other *rsa.PrivateKey
	ec         *ecdsa.PrivateKey
}) {
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err == nil {
		if k.other, err = rsa.GenerateKey(rand.Reader, 2048); err == nil {
			k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
	}
	if err != nil {
		panic(err)
	}
	return k
})

// sign returns claims as a JWT signed with key (a private key, or an HMAC
// secret's bytes) and alg, naming kid if not empty.
func sign(t *testing.T, key any, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// assertionClaims are a valid client assertion's claims for p, changed by
// edit.
func assertionClaims(p *authtest.Provider, edit func(c map[string]any)) map[string]any {
	now := p.Now()
	c := map[string]any{
		"iss": p.ClientID, "sub": p.ClientID, "aud": p.URL + "/token",
		"jti": rand.Text(), "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// withAssertion adds a client assertion to form, with no other
// credentials.
func withAssertion(form url.Values, jwt string) url.Values {
	form.Set("client_id", "test-client")
	form.Set("client_assertion_type", assertionType)
	form.Set("client_assertion", jwt)
	return form
}

func newAssertionProvider(t *testing.T, methods ...string) *authtest.Provider {
	t.Helper()
	k := clientKeys()
	return newProvider(t, authtest.Config{
		ClientSecret:     longSecret,
		TokenAuthMethods: methods,
		ClientKeys:       map[string]crypto.PublicKey{"rsa-1": k.rsa.Public(), "ec-1": k.ec.Public()},
		SigningAlg:       "ES256",
	})
}

func TestClientAssertion(t *testing.T) {
	t.Parallel()
	k := clientKeys()
	for _, tt := range []struct {
		name      string
		methods   []string // default: both JWT methods
		key       any
		alg       jose.SignatureAlgorithm
		kid       string
		edit      func(p *authtest.Provider, c map[string]any)
		form      func(form url.Values)
		wantError string // "" for success
		wantDesc  string
	}{
		{name: "private_key_jwt RS256", key: k.rsa, alg: jose.RS256, kid: "rsa-1"},
		{name: "private_key_jwt PS256", key: k.rsa, alg: jose.PS256, kid: "rsa-1"},
		{name: "private_key_jwt ES256", key: k.ec, alg: jose.ES256, kid: "ec-1"},
		{name: "private_key_jwt without kid", key: k.ec, alg: jose.ES256},
		{name: "client_secret_jwt HS256", key: []byte(longSecret), alg: jose.HS256},
		{name: "aud the issuer", key: k.rsa, alg: jose.RS256, kid: "rsa-1", edit: func(p *authtest.Provider, c map[string]any) { c["aud"] = p.URL }},
		{name: "aud an array", key: k.rsa, alg: jose.RS256, kid: "rsa-1", edit: func(p *authtest.Provider, c map[string]any) {
			c["aud"] = []string{"https://other.example", p.URL + "/token"}
		}},
		{name: "with nbf", key: k.rsa, alg: jose.RS256, kid: "rsa-1", edit: func(p *authtest.Provider, c map[string]any) { c["nbf"] = p.Now().Unix() }},

		{name: "secret JWT, wrong secret", key: []byte(strings.Repeat("x", 32)), alg: jose.HS256, wantError: "invalid_client", wantDesc: "signature"},
		{name: "unknown kid", key: k.rsa, alg: jose.RS256, kid: "rsa-2", wantError: "invalid_client", wantDesc: "unknown key"},
		{name: "another key under a known kid", key: k.other, alg: jose.RS256, kid: "rsa-1", wantError: "invalid_client", wantDesc: "signature"},
		{name: "another key without kid", key: k.other, alg: jose.RS256, wantError: "invalid_client", wantDesc: "signature"},
		{name: "private_key_jwt not allowed", methods: []string{"client_secret_jwt"}, key: k.rsa, alg: jose.RS256, kid: "rsa-1", wantError: "invalid_client", wantDesc: "not allowed"},
		{name: "client_secret_jwt not allowed", methods: []string{"private_key_jwt"}, key: []byte(longSecret), alg: jose.HS256, wantError: "invalid_client", wantDesc: "not allowed"},
		{name: "wrong aud", key: k.rsa, alg: jose.RS256, kid: "rsa-1", edit: func(p *authtest.Provider, c map[string]any) { c["aud"] = "https://other.example/token" }, wantError: "invalid_client", wantDesc: "aud"},
		{name: "aud with a trailing slash", key: k.rsa, alg: jose.RS256, kid: "rsa-1", edit: func(p *authtest.Provider, c map[string]any) { c["aud"] = p.URL + "/" }, wantError: "invalid_client", wantDesc: "aud"},
		{name: "no aud", key: k.rsa, alg: jose.RS256, kid: "rsa-1", edit: func(p *authtest.Provider, c map[string]any) { delete(c, "aud") }, wantError: "invalid_client", wantDesc: "aud"},
		{name: "expired", key: k.rsa, alg: jose.RS256, kid: "rsa-1", edit: func(p *authtest.Provider, c map[string]any) { c["exp"] = p.Now().Unix() }, wantError: "invalid_client", wantDesc: "expired"},
		{name: "no exp", key: k.rsa, alg: jose.RS256, kid: "rsa-1", edit: func(p *authtest.Provider, c map[string]any) { delete(c, "exp") }, wantError: "invalid_client", wantDesc: "no exp"},
		{name: "exp too far", key: k.rsa, alg: jose.RS256, kid: "rsa-1", edit: func(p *authtest.Provider, c map[string]any) { c["exp"] = p.Now().Add(time.Hour).Unix() }, wantError: "invalid_client", wantDesc: "too far"},
		{name: "nbf in the future", key: k.rsa, alg: jose.RS256, kid: "rsa-1", edit: func(p *authtest.Provider, c map[string]any) { c["nbf"] = p.Now().Add(30 * time.Second).Unix() }, wantError: "invalid_client", wantDesc: "nbf"},
		{name: "iat in the future", key: k.rsa, alg: jose.RS256, kid: "rsa-1", edit: func(p *authtest.Provider, c map[string]any) { c["iat"] = p.Now().Add(30 * time.Second).Unix() }, wantError: "invalid_client", wantDesc: "iat"},
		{name: "iss another client", key: k.rsa, alg: jose.RS256, kid: "rsa-1", edit: func(p *authtest.Provider, c map[string]any) { c["iss"] = "other" }, wantError: "invalid_client", wantDesc: "iss"},
		{name: "sub another client", key: k.rsa, alg: jose.RS256, kid: "rsa-1", edit: func(p *authtest.Provider, c map[string]any) { c["sub"] = "other" }, wantError: "invalid_client", wantDesc: "sub"},
		{name: "no jti", key: k.rsa, alg: jose.RS256, kid: "rsa-1", edit: func(p *authtest.Provider, c map[string]any) { delete(c, "jti") }, wantError: "invalid_client", wantDesc: "jti"},
		{name: "client_id of another client", key: k.rsa, alg: jose.RS256, kid: "rsa-1", form: func(f url.Values) { f.Set("client_id", "other") }, wantError: "invalid_request"},
		{name: "and a client secret", key: k.rsa, alg: jose.RS256, kid: "rsa-1", form: func(f url.Values) { f.Set("client_secret", longSecret) }, wantError: "invalid_request"},
		{name: "wrong assertion type", key: k.rsa, alg: jose.RS256, kid: "rsa-1", form: func(f url.Values) {
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
		}, wantError: "invalid_request"},
		{name: "not a JWT", key: k.rsa, alg: jose.RS256, kid: "rsa-1", form: func(f url.Values) { f.Set("client_assertion", "not.a.jwt") }, wantError: "invalid_client"},
		{name: "alg none", key: k.rsa, alg: jose.RS256, kid: "rsa-1", form: func(f url.Values) {
			parts := strings.Split(f.Get("client_assertion"), ".")
			f.Set("client_assertion", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."+parts[1]+".")
		}, wantError: "invalid_client"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			methods := tt.methods
			if methods == nil {
				methods = []string{"private_key_jwt", "client_secret_jwt"}
			}
			p := newAssertionProvider(t, methods...)
			claims := assertionClaims(p, nil)
			if tt.edit != nil {
				tt.edit(p, claims)
			}
			form := withAssertion(codeForm(code(t, p, "alice", authParams(p))), sign(t, tt.key, tt.alg, tt.kid, claims))
			if tt.form != nil {
				tt.form(form)
			}
			tr := post(t, p, "/token", form)
			checkTokenResult(t, "POST /token", tr, tt.wantError)
			if !strings.Contains(tr.ErrorDescription, tt.wantDesc) {
				t.Errorf("POST /token: error_description %q, want it to mention %q", tr.ErrorDescription, tt.wantDesc)
			}
		})
	}
}

// TestClientAssertionReplay: an assertion works once; RFC 7523 3 lets the
// provider refuse its jti again, which it does until the assertion
// expires, for refresh and revocation alike.
func TestClientAssertionReplay(t *testing.T) {
	t.Parallel()
	p := newAssertionProvider(t, "private_key_jwt")
	jwt := sign(t, clientKeys().ec, jose.ES256, "ec-1", assertionClaims(p, nil))
	tr := post(t, p, "/token", withAssertion(codeForm(code(t, p, "alice", authParams(p))), jwt))
	checkTokenResult(t, "POST /token", tr, "")
	again := post(t, p, "/token", withAssertion(refreshForm(tr.RefreshToken), jwt))
	checkTokenResult(t, "POST /token (refresh) with the same assertion", again, "invalid_client")
	if !strings.Contains(again.ErrorDescription, "already used") {
		t.Errorf("replayed assertion: error_description %q, want it to say the jti was used", again.ErrorDescription)
	}
	fresh := sign(t, clientKeys().ec, jose.ES256, "ec-1", assertionClaims(p, nil))
	checkTokenResult(t, "POST /token (refresh) with a fresh assertion", post(t, p, "/token", withAssertion(refreshForm(tr.RefreshToken), fresh)), "")
	if got := p.Grants("refresh_token"); got != 1 {
		t.Errorf("refresh grants = %d, want 1", got)
	}

	// Revocation takes assertions too, with aud its own URL.
	revoke := sign(t, clientKeys().ec, jose.ES256, "ec-1", assertionClaims(p, func(c map[string]any) { c["aud"] = p.URL + "/revoke" }))
	if res := post(t, p, "/revoke", withAssertion(url.Values{"token": {tr.AccessToken}}, revoke)); res.Status != http.StatusOK {
		t.Errorf("POST /revoke with an assertion: status %d %s (%s), want 200", res.Status, res.Error, res.ErrorDescription)
	}
	if res := post(t, p, "/revoke", withAssertion(url.Values{"token": {tr.AccessToken}}, revoke)); res.Status != http.StatusBadRequest || res.Error != "invalid_client" {
		t.Errorf("POST /revoke with the same assertion: status %d %s, want 400 invalid_client", res.Status, res.Error)
	}
	for _, r := range p.Requests() {
		if v := r.Form.Get("client_assertion"); v != "" && v != "REDACTED" {
			t.Errorf("Requests(): %s holds a client_assertion, want it REDACTED", r.Endpoint)
		}
	}
}

// TestAddClientKey: a key added later authenticates the client.
func TestAddClientKey(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{TokenAuthMethods: []string{"private_key_jwt"}, SigningAlg: "ES256"})
	jwt := func() string { return sign(t, clientKeys().other, jose.RS256, "later", assertionClaims(p, nil)) }
	checkTokenResult(t, "POST /token before AddClientKey", post(t, p, "/token", withAssertion(codeForm(code(t, p, "alice", authParams(p))), jwt())), "invalid_client")
	p.AddClientKey("later", clientKeys().other.Public())
	checkTokenResult(t, "POST /token after AddClientKey", post(t, p, "/token", withAssertion(codeForm(code(t, p, "alice", authParams(p))), jwt())), "")
}

// TestClientAssertionDiscovery: the JWT methods and their algorithms are
// advertised (OpenID Connect Discovery 1.0 section 3).
func TestClientAssertionDiscovery(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		methods  []string
		wantAlgs []string // some of them; nil: none listed
	}{
		{nil, nil},
		{[]string{"private_key_jwt"}, []string{"RS256", "ES256", "PS256"}},
		{[]string{"client_secret_jwt"}, []string{"HS256"}},
	} {
		p := newProvider(t, authtest.Config{TokenAuthMethods: tt.methods})
		_, body := apptest.Get(t, p.Client(), p.URL+"/.well-known/openid-configuration")
		var doc struct {
			Methods []string `json:"token_endpoint_auth_methods_supported"`
			Algs    []string `json:"token_endpoint_auth_signing_alg_values_supported"`
			RAlgs   []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
		}
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatal(err)
		}
		for _, m := range tt.methods {
			if !slices.Contains(doc.Methods, m) {
				t.Errorf("methods %v: discovery lists %v", tt.methods, doc.Methods)
			}
		}
		if tt.wantAlgs == nil && (doc.Algs != nil || doc.RAlgs != nil) {
			t.Errorf("methods %v: discovery lists signing algorithms %v, %v; want none", tt.methods, doc.Algs, doc.RAlgs)
		}
		for _, a := range tt.wantAlgs {
			if !slices.Contains(doc.Algs, a) || !slices.Contains(doc.RAlgs, a) {
				t.Errorf("methods %v: discovery lists algorithms %v (revocation %v), want %s among them", tt.methods, doc.Algs, doc.RAlgs, a)
			}
		}
		if slices.Contains(doc.Algs, "none") {
			t.Errorf("discovery lists alg none")
		}
	}
}
