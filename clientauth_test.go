package auth_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

// testKeys are the client keys of these tests, made once per test binary:
// an RSA key takes a while.
var testKeys = sync.OnceValue(func() (k struct {
	rsa  *rsa.PrivateKey
	ec   *ecdsa.PrivateKey
	cert *x509.Certificate // self-signed, of rsa
}) {
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gatehouse test client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.rsa.Public(), k.rsa)
	if err != nil {
		panic(err)
	}
	if k.cert, err = x509.ParseCertificate(der); err != nil {
		panic(err)
	}
	return k
})

// hsmKey is a crypto.Signer that go-jose does not know, as keys in an HSM
// or a cloud KMS are.
type hsmKey struct{ crypto.Signer }

// longSecret is long enough for client_secret_jwt's HS256 (RFC 7518 3.2).
const longSecret = "a client secret of at least 32 bytes, for HS256"

// tap is a transport for Config.HTTPClient that watches the client's
// requests to the provider: it keeps every client assertion sent, and
// replaces the next one with an earlier one on demand, as an attacker
// replaying a captured assertion would.
type tap struct {
	mu     sync.Mutex
	sent   []string // client assertions, in order
	replay string   // sent instead of the next assertion, once
	bodies []url.Values
}

func (tp *tap) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		form, _ := url.ParseQuery(string(b))
		tp.mu.Lock()
		if a := form.Get("client_assertion"); a != "" {
			tp.sent = append(tp.sent, a)
			if tp.replay != "" {
				form.Set("client_assertion", tp.replay)
				tp.replay = ""
				b = []byte(form.Encode())
			}
		}
		tp.bodies = append(tp.bodies, form)
		tp.mu.Unlock()
		req = req.Clone(req.Context())
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (tp *tap) assertions() []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]string(nil), tp.sent...)
}

// jwtPart decodes part i (0 header, 1 claims) of a JWT.
func jwtPart(t *testing.T, jwt string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.40q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// newAssertionApp serves the app with a client that authenticates by
// assertion (cfg's ClientKey or TokenAuthMethod) at an authtest provider
// that allows method, with key registered as kid. Its HTTPClient goes
// through tp.
func newAssertionApp(t *testing.T, method, kid string, key crypto.PublicKey, tp *tap, edit func(*auth.Config)) *apptest.App {
	t.Helper()
	pcfg := authtest.Config{TokenAuthMethods: []string{method}, ClientSecret: longSecret, AccessTokenTTL: 30 * time.Second}
	if key != nil {
		pcfg.ClientKeys = map[string]crypto.PublicKey{kid: key}
	}
	return apptest.New(t, pcfg, func(c *auth.Config) {
		c.ClientSecret = ""
		c.HTTPClient = &http.Client{Transport: tp, Timeout: 10 * time.Second}
		edit(c)
	})
}

// TestClientAssertionFlow signs in, refreshes and signs out with each
// kind of client assertion, over real HTTP against authtest, which checks
// every assertion (signature, iss, sub, aud, exp, a fresh jti).
func TestClientAssertionFlow(t *testing.T) {
	k := testKeys()
	thumb, err := auth.KeyThumbprint(k.ec.Public())
	if err != nil {
		t.Fatal(err)
	}
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	for _, tt := range []struct {
		name, method, kid string
		pub               crypto.PublicKey
		edit              func(*auth.Config)
		wantAlg           string
	}{
		{"private_key_jwt RSA", "private_key_jwt", "rsa-1", k.rsa.Public(), func(c *auth.Config) { c.ClientKey, c.ClientKeyID = k.rsa, "rsa-1" }, "RS256"},
		{"private_key_jwt ECDSA, thumbprint kid", "private_key_jwt", thumb, k.ec.Public(), func(c *auth.Config) { c.ClientKey = k.ec }, "ES256"},
		{"private_key_jwt Ed25519", "private_key_jwt", "ed", edPriv.Public(), func(c *auth.Config) { c.ClientKey, c.ClientKeyID = edPriv, "ed" }, "EdDSA"},
		{"private_key_jwt HSM RSA", "private_key_jwt", "hsm", k.rsa.Public(), func(c *auth.Config) { c.ClientKey, c.ClientKeyID = hsmKey{k.rsa}, "hsm" }, "RS256"},
		{"private_key_jwt HSM ECDSA", "private_key_jwt", "hsm", k.ec.Public(), func(c *auth.Config) { c.ClientKey, c.ClientKeyID = hsmKey{k.ec}, "hsm" }, "ES256"},
		{"client_secret_jwt", "client_secret_jwt", "", nil, func(c *auth.Config) { c.ClientSecret = longSecret; c.TokenAuthMethod = "client_secret_jwt" }, "HS256"},
		{"client_secret_jwt from discovery", "client_secret_jwt", "", nil, func(c *auth.Config) { c.ClientSecret = longSecret }, "HS256"},
		{"aud the issuer", "private_key_jwt", "rsa-1", k.rsa.Public(), func(c *auth.Config) {
			c.ClientKey, c.ClientKeyID, c.ClientAssertionAudience = k.rsa, "rsa-1", c.Issuer
		}, "RS256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tp := &tap{}
			app := newAssertionApp(t, tt.method, tt.kid, tt.pub, tp, tt.edit)
			c := app.Login(t, "alice")
			app.P.Advance(20 * time.Second) // the 30 s access token is due
			if status, u := app.Me(t, c); status != http.StatusOK || u.Subject != "alice" {
				t.Fatalf("GET /me after the token is due: %d %+v, want alice", status, u)
			}
			if got := app.P.Grants("refresh_token"); got != 1 {
				t.Fatalf("refresh grants = %d, want 1; log:\n%s", got, app.Logs)
			}
			req, _ := http.NewRequest(http.MethodPost, app.URL+"/auth/logout", nil)
			if res, _ := apptest.Do(t, c, req); res.StatusCode != http.StatusSeeOther {
				t.Errorf("POST /auth/logout: status %d, want 303", res.StatusCode)
			}
			if got := app.P.Revocations(); got != 1 {
				t.Errorf("revocations = %d, want 1; log:\n%s", got, app.Logs)
			}

			// Exchange, refresh and revocation each sent a fresh
			// assertion, and never the client secret.
			sent := tp.assertions()
			if len(sent) != 3 {
				t.Fatalf("client assertions sent = %d, want 3 (code, refresh, revocation)", len(sent))
			}
			jtis := map[any]bool{}
			for _, a := range sent {
				h, c := jwtPart(t, a, 0), jwtPart(t, a, 1)
				if h["alg"] != tt.wantAlg || h["typ"] != "JWT" || (tt.kid != "" && h["kid"] != tt.kid) {
					t.Errorf("assertion header %v, want alg %s, typ JWT, kid %q", h, tt.wantAlg, tt.kid)
				}
				wantAud := app.P.URL + "/token"
				if tt.name == "aud the issuer" {
					wantAud = app.P.URL
				}
				if c["iss"] != app.P.ClientID || c["sub"] != app.P.ClientID || c["aud"] != wantAud {
					t.Errorf("assertion claims %v, want iss and sub %s, aud %s", c, app.P.ClientID, wantAud)
				}
				exp, iat := c["exp"].(float64), c["iat"].(float64)
				if exp-iat != 60 {
					t.Errorf("assertion valid for %vs, want 60", exp-iat)
				}
				jtis[c["jti"]] = true
			}
			if len(jtis) != 3 {
				t.Errorf("assertions have %d different jti, want 3", len(jtis))
			}
			for _, f := range tp.bodies {
				if f.Has("client_secret") {
					t.Errorf("a request to the provider carried client_secret: %v", f)
				}
			}
		})
	}
}

// TestClientAssertionRefused: the provider refuses a replayed or expired
// assertion (as if an attacker had captured one, or the clocks were far
// apart); the refresh fails without ending the session, and the log says
// how the client authenticated and the provider's reason.
func TestClientAssertionRefused(t *testing.T) {
	k := testKeys()
	for _, tt := range []struct {
		name    string
		advance time.Duration // after login
		reason  string        // authtest's error_description
	}{
		{"replayed", 20 * time.Second, "jti already used"},
		{"expired", 2 * time.Minute, "client_assertion expired"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tp := &tap{}
			app := newAssertionApp(t, "private_key_jwt", "rsa-1", k.rsa.Public(), tp, func(c *auth.Config) { c.ClientKey, c.ClientKeyID = k.rsa, "rsa-1" })
			c := app.Login(t, "alice")
			captured := tp.assertions()[0] // the code exchange's
			app.P.Advance(tt.advance)
			tp.mu.Lock()
			tp.replay = captured
			tp.mu.Unlock()
			if status, _ := app.Me(t, c); status != http.StatusOK {
				t.Errorf("GET /me: status %d, want 200: a refused refresh keeps the session", status)
			}
			if got := app.P.Grants("refresh_token"); got != 0 {
				t.Errorf("refresh grants = %d, want 0", got)
			}
			log := app.Logs.String()
			for _, want := range []string{"refresh failed", "invalid_client", "private_key_jwt (RS256, kid", "rsa-1", tt.reason} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
			if strings.Contains(log, captured) || strings.Contains(log, captured[len(captured)-20:]) {
				t.Errorf("log holds the client assertion:\n%s", log)
			}
		})
	}
}

// TestClientAssertionLogin: a login whose code exchange the provider
// refuses for the client's authentication fails with 502 (a configuration
// error the user cannot fix), and the log says why.
func TestClientAssertionLogin(t *testing.T) {
	k := testKeys()
	// The provider knows another key under the kid the client sends.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	app := newAssertionApp(t, "private_key_jwt", "ec-1", other.Public(), &tap{}, func(c *auth.Config) { c.ClientKey, c.ClientKeyID = k.ec, "ec-1" })
	res, body, visited := apptest.Follow(t, app.P.Browser(t, "alice"), app.URL+"/auth/login")
	if res.StatusCode != http.StatusBadGateway {
		t.Errorf("login: status %d (%q) after %v, want 502", res.StatusCode, body, visited)
	}
	if log := app.Logs.String(); !strings.Contains(log, "exchange code") || !strings.Contains(log, "signature does not verify") {
		t.Errorf("log does not say the provider refused the assertion's signature:\n%s", log)
	}
}

// TestEntraCertificate: the Microsoft preset with a certificate instead of
// a secret sends private_key_jwt assertions whose header names the
// certificate by its thumbprints, as Entra ID wants ("Microsoft identity
// platform application authentication certificate credentials": x5t#S256,
// and x5t, base64url SHA-256 and SHA-1 of the certificate's DER).
func TestEntraCertificate(t *testing.T) {
	k := testKeys()
	op := authtest.NewProvider(authtest.Config{TokenAuthMethods: []string{"private_key_jwt"}, ClientKeys: map[string]crypto.PublicKey{"entra": k.rsa.Public()}})
	t.Cleanup(op.Close)
	entra := newFakeEntra(t, op)
	tp := &tap{}
	app := apptest.NewProviders(t, op.Now, func(appURL string) []auth.Provider {
		op.AddRedirectURI(appURL + "/auth/callback")
		p := auth.Microsoft(tenantA, op.ClientID, "", auth.MicrosoftOptions{})
		p.Issuer = entra.URL + "/" + tenantA + "/v2.0"
		p.ClientKey, p.ClientKeyID, p.ClientCertificate = k.rsa, "entra", k.cert
		return []auth.Provider{p}
	}, func(c *auth.Config) { c.HTTPClient = &http.Client{Transport: tp} })
	app.P = op
	entra.issueAs(tenantA, "")
	if u := app.LoginAt(t, op.Browser(t, "alice"), "/auth/login"); u.Subject != "alice" {
		t.Errorf("signed in as %q, want alice", u.Subject)
	}
	sent := tp.assertions()
	if len(sent) != 1 {
		t.Fatalf("client assertions sent = %d, want 1", len(sent))
	}
	s1, s256 := sha1.Sum(k.cert.Raw), sha256.Sum256(k.cert.Raw)
	h := jwtPart(t, sent[0], 0)
	if h["x5t"] != base64.RawURLEncoding.EncodeToString(s1[:]) || h["x5t#S256"] != base64.RawURLEncoding.EncodeToString(s256[:]) || h["alg"] != "RS256" {
		t.Errorf("assertion header %v, want RS256 with the certificate's x5t and x5t#S256", h)
	}
}

// TestClientAuthSettings: New refuses settings that cannot work, and
// says which.
func TestClientAuthSettings(t *testing.T) {
	k := testKeys()
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, g := range []struct {
		methods []string // the provider's; default basic and post
		cases   []configCase
	}{
		{nil, []configCase{
			{"key, provider without private_key_jwt", func(c *auth.Config) { c.ClientKey = k.ec }, "does not support private_key_jwt"},
			{"unknown method", func(c *auth.Config) { c.ClientSecret, c.TokenAuthMethod = "s", "tls_client_auth" }, `TokenAuthMethod "tls_client_auth"`},
			{"key ID without key", func(c *auth.Config) { c.ClientSecret, c.ClientKeyID = "s", "k1" }, "need a ClientKey"},
			{"key with a secret method", func(c *auth.Config) {
				c.ClientKey, c.ClientSecret, c.TokenAuthMethod = k.ec, "s", "client_secret_basic"
			}, "ClientKey is for TokenAuthMethod private_key_jwt"},
			{"none with a secret", func(c *auth.Config) { c.ClientSecret, c.TokenAuthMethod = "s", "none" }, "public client"},
			{"public client with a key", func(c *auth.Config) { c.ClientKey, c.PublicClient = k.ec, true }, "a public client has no ClientSecret or ClientKey"},
			{"public client with another method", func(c *auth.Config) { c.PublicClient, c.TokenAuthMethod = true, "client_secret_post" }, "needs a ClientSecret"},
			{"audience with a secret method", func(c *auth.Config) {
				c.ClientSecret, c.TokenAuthMethod, c.ClientAssertionAudience = "s", "client_secret_post", "x"
			}, "ClientAssertionAudience is for"},
		}},
		{[]string{"private_key_jwt"}, []configCase{
			{"client_secret_jwt not listed", func(c *auth.Config) { c.ClientSecret, c.TokenAuthMethod = longSecret, "client_secret_jwt" }, "does not support client_secret_jwt"},
			{"private_key_jwt without key", func(c *auth.Config) { c.ClientSecret, c.TokenAuthMethod = "s", "private_key_jwt" }, "needs a ClientKey"},
			{"short RSA key", func(c *auth.Config) { c.ClientKey = small }, "1024 bits is too short"},
			{"certificate of another key", func(c *auth.Config) { c.ClientKey, c.ClientCertificate = other, k.cert }, "not the private key's"},
		}},
		{[]string{"client_secret_jwt"}, []configCase{
			{"client_secret_jwt, short secret", func(c *auth.Config) { c.ClientSecret, c.TokenAuthMethod = "short", "client_secret_jwt" }, "at least 32 bytes"},
			{"only client_secret_jwt listed, short secret", func(c *auth.Config) { c.ClientSecret = "short" }, "supports neither client_secret_basic nor client_secret_post"},
		}},
	} {
		p := authtest.NewProvider(authtest.Config{TokenAuthMethods: g.methods})
		defer p.Close()
		t.Run(fmt.Sprintf("provider lists %v", g.methods), func(t *testing.T) {
			testConfigs(t, auth.Config{Issuer: p.URL, ClientID: p.ClientID, RedirectURL: "http://127.0.0.1/auth/callback", CookieSecret: apptest.Secret}, g.cases)
		})
	}
	// With Providers, these settings go in each Provider.
	_, err := auth.New(context.Background(), auth.Config{
		Providers: []auth.Provider{auth.GitHub("id", "secret")}, ClientKey: k.ec,
		RedirectURL: "http://127.0.0.1/auth/callback", CookieSecret: apptest.Secret,
	})
	if err == nil || !strings.Contains(err.Error(), "in each Provider") {
		t.Errorf("New with Providers and Config.ClientKey: %v, want an error", err)
	}
}

// TestPlainOAuthClientKey: a plain OAuth 2.0 provider (no discovery) gets
// private_key_jwt assertions for its TokenURL.
func TestPlainOAuthClientKey(t *testing.T) {
	k := testKeys()
	op := authtest.NewProvider(authtest.Config{TokenAuthMethods: []string{"private_key_jwt"}, ClientKeys: map[string]crypto.PublicKey{"k": k.ec.Public()}})
	t.Cleanup(op.Close)
	app := apptest.NewProviders(t, op.Now, func(appURL string) []auth.Provider {
		op.AddRedirectURI(appURL + "/auth/callback")
		return []auth.Provider{{
			ClientID: op.ClientID, ClientKey: k.ec, ClientKeyID: "k",
			AuthURL: op.URL + "/authorize", TokenURL: op.URL + "/token", UserURL: op.URL + "/userinfo",
			Scopes: []string{"openid"},
		}}
	}, nil)
	app.P = op
	if u := app.LoginAt(t, op.Browser(t, "bob"), "/auth/login"); u.Subject != "bob" {
		t.Errorf("signed in as %q, want bob", u.Subject)
	}
}

func TestParseClientKey(t *testing.T) {
	k := testKeys()
	block := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	pkcs8 := func(key any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return block("PRIVATE KEY", der)
	}
	sec1, err := x509.MarshalECPrivateKey(k.ec)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certPEM := block("CERTIFICATE", k.cert.Raw)
	for _, tt := range []struct {
		name     string
		pem      []byte
		wantPub  crypto.PublicKey
		wantCert bool
		wantErr  string
	}{
		{"PKCS #8 RSA", pkcs8(k.rsa), k.rsa.Public(), false, ""},
		{"PKCS #8 ECDSA (Apple's .p8)", pkcs8(k.ec), k.ec.Public(), false, ""},
		{"PKCS #1 RSA", block("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k.rsa)), k.rsa.Public(), false, ""},
		{"SEC 1 ECDSA", block("EC PRIVATE KEY", sec1), k.ec.Public(), false, ""},
		{"key and certificate", append(pkcs8(k.rsa), certPEM...), k.rsa.Public(), true, ""},
		{"certificate first", append(certPEM, pkcs8(k.rsa)...), k.rsa.Public(), true, ""},
		{"certificate of another key", append(pkcs8(other), certPEM...), nil, false, "not the private key's"},
		{"certificate only", certPEM, nil, false, "no PRIVATE KEY"},
		{"two keys", append(pkcs8(k.ec), pkcs8(other)...), nil, false, "more than one"},
		{"encrypted", block("ENCRYPTED PRIVATE KEY", []byte("x")), nil, false, "encrypted"},
		{"garbage", []byte("not pem"), nil, false, "no PRIVATE KEY"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key, cert, err := auth.ParseClientKey(tt.pem)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseClientKey: %v, want an error saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseClientKey: %v", err)
			}
			if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(tt.wantPub) {
				t.Errorf("ParseClientKey: another key")
			}
			if (cert != nil) != tt.wantCert {
				t.Errorf("ParseClientKey: certificate %v, want one: %v", cert != nil, tt.wantCert)
			}
		})
	}
}
