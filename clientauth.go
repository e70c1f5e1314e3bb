package auth

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
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// This file is how the client proves who it is to the provider, at the
// token endpoint (code exchange and refresh) and at the revocation
// endpoint: with its client secret (client_secret_basic or
// client_secret_post, RFC 6749 2.3.1), with a JWT it signs
// (client_secret_jwt with the secret, private_key_jwt with a private key:
// RFC 7523 2.2 and 3, OpenID Connect Core 1.0 section 9), with a secret it
// makes itself (Sign in with Apple's, apple.go), or with nothing but its ID
// (a public client). The method is chosen once, in New, from the
// configuration and the provider's discovery document, and then never
// changes: a request the provider refuses is not tried again another way.
//
// Any call that authenticates the client goes through provider.authenticate
// (or provider.postForm, which also sends the request). The token
// endpoint's grants go through golang.org/x/oauth2, which knows only client
// secrets: for the other methods its requests pass through clientTransport,
// which adds the credentials to each request's body.

// Client authentication methods: the token_endpoint_auth_method values of
// OpenID Connect Dynamic Client Registration 1.0 section 2 (and RFC 7591).
const (
	methodBasic     = "client_secret_basic"
	methodPost      = "client_secret_post"
	methodSecretJWT = "client_secret_jwt"
	methodKeyJWT    = "private_key_jwt"
	methodNone      = "none"
)

// assertionType is the client_assertion_type of a JWT client assertion
// (RFC 7523 2.2).
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is how long a client assertion is valid: each request
// gets a fresh one, so it only has to outlive the request.
const assertionLifetime = time.Minute

// ParseClientKey reads a private key for [Provider].ClientKey from PEM
// data: PKCS #8 ("PRIVATE KEY", as openssl genpkey and Apple's .p8 files
// write it), PKCS #1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"), of
// type RSA (2048 bits or more), ECDSA (P-256, P-384 or P-521) or Ed25519.
// A "CERTIFICATE" block in the same data is the key's X.509 certificate,
// for [Provider].ClientCertificate; it is nil when there is none, and an
// error when it is not the key's. Encrypted keys are not supported.
func ParseClientKey(pemData []byte) (crypto.Signer, *x509.Certificate, error) {
	var key crypto.Signer
	var cert *x509.Certificate
	for rest := pemData; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if key != nil {
				return nil, nil, errors.New("auth: client key: more than one private key")
			}
			k, err := parsePrivateKey(b)
			if err != nil {
				return nil, nil, fmt.Errorf("auth: client key: %w", err)
			}
			key = k
		case "CERTIFICATE":
			if cert != nil {
				continue // the chain's other certificates
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("auth: client key: certificate: %w", err)
			}
			cert = c
		case "ENCRYPTED PRIVATE KEY":
			return nil, nil, errors.New("auth: client key: encrypted keys are not supported")
		}
	}
	if key == nil {
		return nil, nil, errors.New("auth: client key: no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block in the PEM data")
	}
	if err := checkKey(key, cert); err != nil {
		return nil, nil, fmt.Errorf("auth: client key: %w", err)
	}
	return key, cert, nil
}

func parsePrivateKey(b *pem.Block) (crypto.Signer, error) {
	var k any
	var err error
	switch b.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", k)
	}
	return s, nil
}

// checkKey checks that key can sign client assertions, and that cert, if
// any, is its certificate.
func checkKey(key crypto.Signer, cert *x509.Certificate) error {
	if _, err := keyAlgs(key.Public()); err != nil {
		return err
	}
	if cert != nil {
		if pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
			return errors.New("the certificate is not the private key's")
		}
	}
	return nil
}

// keyAlgs returns the JWS algorithms a public key can verify, preferred
// first (RFC 7518 3.1): RS256 before PS256 for RSA, as most providers
// accept it; ECDSA by its curve; EdDSA (RFC 8037).
func keyAlgs(pub crypto.PublicKey) ([]jose.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("an RSA key of %d bits is too short: use 2048 or more (RFC 7518 3.3)", k.N.BitLen())
		}
		return []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.RS384, jose.PS384, jose.RS512, jose.PS512}, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []jose.SignatureAlgorithm{jose.ES256}, nil
		case elliptic.P384():
			return []jose.SignatureAlgorithm{jose.ES384}, nil
		case elliptic.P521():
			return []jose.SignatureAlgorithm{jose.ES512}, nil
		}
		return nil, fmt.Errorf("unsupported elliptic curve %s", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return []jose.SignatureAlgorithm{jose.EdDSA}, nil
	}
	return nil, fmt.Errorf("unsupported key type %T: use RSA, ECDSA or Ed25519", pub)
}

// KeyThumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url)
// of a public key: the key ID that client assertions name by default
// when [Provider].ClientKeyID is empty.
func KeyThumbprint(pub crypto.PublicKey) (string, error) {
	t, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("auth: key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}

// clientAuth is how one provider's client authenticates: the configured
// credentials, and, once pin has run in New, the method and its signer.
// It does not change after New.
type clientAuth struct {
	method   string // a token_endpoint_auth_method; the configured one until pin
	clientID string
	secret   string        // Provider.ClientSecret
	minted   *mintedSecret // a secret the client makes itself (Apple's), or nil
	key      crypto.Signer // Provider.ClientKey
	kid      string
	cert     *x509.Certificate
	audience string // ClientAssertionAudience; pin defaults it to the token endpoint
	signer   jose.Signer
	alg      jose.SignatureAlgorithm
	now      func() time.Time
}

// newClientAuth checks the client authentication settings of pc (w names
// them in errors).
func newClientAuth(pc Provider, w string, now func() time.Time) (*clientAuth, error) {
	a := &clientAuth{
		method:   pc.TokenAuthMethod,
		clientID: pc.ClientID,
		secret:   pc.ClientSecret,
		minted:   pc.mintSecret,
		key:      pc.ClientKey,
		kid:      pc.ClientKeyID,
		cert:     pc.ClientCertificate,
		audience: pc.ClientAssertionAudience,
		now:      now,
	}
	switch a.method {
	case "", methodBasic, methodPost, methodSecretJWT, methodKeyJWT, methodNone:
	default:
		return nil, fmt.Errorf("auth: %s.TokenAuthMethod %q is not one of client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt and none", w, a.method)
	}
	hasSecret := a.secret != "" || a.minted != nil
	switch {
	case a.key == nil && (a.kid != "" || a.cert != nil):
		return nil, fmt.Errorf("auth: %s: ClientKeyID and ClientCertificate need a ClientKey", w)
	case a.method == methodKeyJWT && a.key == nil:
		return nil, fmt.Errorf("auth: %s: TokenAuthMethod private_key_jwt needs a ClientKey", w)
	case a.method == methodSecretJWT && a.secret == "":
		return nil, fmt.Errorf("auth: %s: TokenAuthMethod client_secret_jwt needs a ClientSecret", w)
	case (a.method == methodBasic || a.method == methodPost) && !hasSecret:
		return nil, fmt.Errorf("auth: %s: TokenAuthMethod %s needs a ClientSecret", w, a.method)
	case a.method == methodNone && (hasSecret || a.key != nil):
		return nil, fmt.Errorf("auth: %s: TokenAuthMethod none: a public client has no ClientSecret or ClientKey", w)
	case pc.PublicClient && a.method != "" && a.method != methodNone:
		return nil, fmt.Errorf("auth: %s: a PublicClient authenticates with TokenAuthMethod none, not %s", w, a.method)
	case a.key != nil && a.method != "" && a.method != methodKeyJWT:
		return nil, fmt.Errorf("auth: %s: a ClientKey is for TokenAuthMethod private_key_jwt, not %s", w, a.method)
	case a.audience != "" && a.method != "" && a.method != methodKeyJWT && a.method != methodSecretJWT:
		return nil, fmt.Errorf("auth: %s: ClientAssertionAudience is for private_key_jwt and client_secret_jwt, not %s", w, a.method)
	}
	if a.method == methodSecretJWT && len(a.secret) < 32 {
		// The HMAC key must be at least as long as the hash (RFC 7518 3.2).
		return nil, fmt.Errorf("auth: %s: client_secret_jwt needs a ClientSecret of at least 32 bytes, got %d", w, len(a.secret))
	}
	if a.minted != nil {
		if _, err := a.minted.get(now()); err != nil { // the preset's settings
			return nil, fmt.Errorf("auth: %s: %w", w, err)
		}
	}
	if a.key != nil {
		if err := checkKey(a.key, a.cert); err != nil {
			return nil, fmt.Errorf("auth: %s.ClientKey: %w", w, err)
		}
		if a.kid == "" {
			kid, err := KeyThumbprint(a.key.Public())
			if err != nil {
				return nil, err
			}
			a.kid = kid
		}
	}
	return a, nil
}

// pin chooses the method for good, from the configuration and what the
// provider lists in its discovery document (methods, and algs for the JWT
// methods; nil when it says nothing, or has no discovery document). The
// default is private_key_jwt with a ClientKey; with a secret,
// client_secret_basic if listed (or nothing is), else client_secret_post,
// else client_secret_jwt; without either, none. tokenURL is the default
// audience of assertions.
func (a *clientAuth) pin(methods, algs []string, tokenURL string) error {
	listed := func(m string) bool { return len(methods) == 0 || slices.Contains(methods, m) }
	if a.method == "" {
		switch {
		case a.key != nil:
			a.method = methodKeyJWT
		case a.secret == "" && a.minted == nil:
			// A public client sends only its ID, whatever the provider
			// lists: many support public clients without saying so.
			a.method = methodNone
			return nil
		case listed(methodBasic):
			a.method = methodBasic
		case listed(methodPost):
			a.method = methodPost
		case listed(methodSecretJWT) && len(a.secret) >= 32 && a.minted == nil:
			a.method = methodSecretJWT
		default:
			return fmt.Errorf("the provider supports neither client_secret_basic nor client_secret_post (it lists %v)", methods)
		}
	}
	if a.method != methodNone && !listed(a.method) {
		return fmt.Errorf("the provider does not support %s (its token_endpoint_auth_methods_supported lists %v)", a.method, methods)
	}
	if a.audience == "" {
		a.audience = tokenURL
	}
	var err error
	switch a.method {
	case methodKeyJWT:
		err = a.newSigner(a.key, algs)
	case methodSecretJWT:
		err = a.newSigner([]byte(a.secret), algs)
	}
	return err
}

// newSigner makes the signer of client assertions with key (a
// crypto.Signer, or the client secret's bytes for HMAC), choosing the first
// algorithm the key can use that the provider lists in
// token_endpoint_auth_signing_alg_values_supported (OpenID Connect
// Discovery 1.0 section 3), if it lists any. It signs one assertion to be
// sure the key works.
func (a *clientAuth) newSigner(key any, algs []string) error {
	var candidates []jose.SignatureAlgorithm
	if k, ok := key.(crypto.Signer); ok {
		candidates, _ = keyAlgs(k.Public())
	} else {
		for _, alg := range []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512} {
			if len(key.([]byte))*8 >= hashBits[alg] {
				candidates = append(candidates, alg)
			}
		}
	}
	for _, alg := range candidates {
		if len(algs) == 0 || slices.Contains(algs, string(alg)) {
			a.alg = alg
			break
		}
	}
	if a.alg == "" {
		return fmt.Errorf("the provider verifies %s with %v, and the key can sign with none of them (only %v)", a.method, algs, candidates)
	}
	jwk := jose.JSONWebKey{Key: key}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if a.method == methodKeyJWT {
		jwk.KeyID = a.kid
		switch key.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		default:
			jwk.Key = opaqueKey{key.(crypto.Signer)} // a key in an HSM or KMS
		}
		if a.cert != nil {
			// The certificate's thumbprints (RFC 7515 4.1.7, 4.1.8),
			// which identify the key to a provider that registered the
			// certificate (Microsoft Entra ID: "Microsoft identity
			// platform application authentication certificate
			// credentials", header parameters x5t#S256 and x5t).
			s1, s256 := sha1.Sum(a.cert.Raw), sha256.Sum256(a.cert.Raw)
			opts = opts.WithHeader("x5t", base64.RawURLEncoding.EncodeToString(s1[:])).
				WithHeader("x5t#S256", base64.RawURLEncoding.EncodeToString(s256[:]))
		}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: a.alg, Key: jwk}, opts)
	if err != nil {
		return fmt.Errorf("%s with %s: %w", a.method, a.alg, err)
	}
	a.signer = s
	if _, err := a.assertion(); err != nil {
		return fmt.Errorf("%s: the key does not sign: %w", a.method, err)
	}
	return nil
}

var hashBits = map[jose.SignatureAlgorithm]int{jose.HS256: 256, jose.HS384: 384, jose.HS512: 512}

// assertion returns a fresh client assertion (RFC 7523 3, OpenID Connect
// Core 1.0 section 9): iss and sub the client ID, aud the provider (its
// token endpoint by default), a random jti, issued now and valid for
// assertionLifetime.
func (a *clientAuth) assertion() (string, error) {
	now := a.now()
	claims, err := json.Marshal(map[string]any{
		"iss": a.clientID,
		"sub": a.clientID,
		"aud": a.audience,
		"jti": randomString(),
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(assertionLifetime).Unix(),
	})
	if err != nil {
		return "", err
	}
	jws, err := a.signer.Sign(claims)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// viaTransport reports whether the token endpoint's requests need
// clientTransport: x/oauth2 sends client secrets itself, but not
// assertions, nor a secret that changes over time.
func (a *clientAuth) viaTransport() bool {
	return a.method == methodKeyJWT || a.method == methodSecretJWT || a.minted != nil
}

// usesAssertion reports whether the client signs JWTs to authenticate.
func (a *clientAuth) usesAssertion() bool {
	return a.method == methodKeyJWT || a.method == methodSecretJWT
}

// pinPlain is pin for a plain OAuth 2.0 provider, which has no discovery
// document. Without a TokenAuthMethod or a ClientKey, a client secret goes
// as the preset says, or as x/oauth2 detects (it tries Basic, then the
// form; revocation sends the form).
func (a *clientAuth) pinPlain(c *oauth2.Config) error {
	if a.method == "" && a.key == nil && a.minted == nil && a.secret != "" {
		a.method = methodPost
		if c.Endpoint.AuthStyle == oauth2.AuthStyleInHeader {
			a.method = methodBasic
		}
		return nil
	}
	if err := a.pin(nil, nil, c.Endpoint.TokenURL); err != nil {
		return err
	}
	a.setStyle(c)
	return nil
}

// setStyle sets how x/oauth2 authenticates the token endpoint's grants:
// a fixed client secret as the method says; for the other methods only
// client_id, and clientTransport adds the credentials.
func (a *clientAuth) setStyle(c *oauth2.Config) {
	switch {
	case a.viaTransport() || a.method == methodNone:
		c.ClientSecret = ""
		c.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	case a.method == methodBasic:
		c.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	case a.method == methodPost:
		c.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
}

// apply adds the client's credentials to a request: to its form
// (client_id, and client_secret or the client assertion) or to its
// header (Basic, RFC 6749 2.3.1: both parts form-encoded first).
func (a *clientAuth) apply(form url.Values, header http.Header) error {
	switch a.method {
	case methodBasic:
		secret, err := a.currentSecret()
		if err != nil {
			return err
		}
		cred := url.QueryEscape(a.clientID) + ":" + url.QueryEscape(secret)
		header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
		form.Del("client_secret")
	case methodPost:
		secret, err := a.currentSecret()
		if err != nil {
			return err
		}
		form.Set("client_id", a.clientID)
		form.Set("client_secret", secret)
	case methodKeyJWT, methodSecretJWT:
		jwt, err := a.assertion()
		if err != nil {
			return fmt.Errorf("auth: sign client assertion: %w", err)
		}
		// client_id may be sent too; it names the client the assertion
		// is about (RFC 7521 4.2).
		form.Set("client_id", a.clientID)
		form.Set("client_assertion_type", assertionType)
		form.Set("client_assertion", jwt)
		form.Del("client_secret")
	default: // none
		form.Set("client_id", a.clientID)
	}
	return nil
}

func (a *clientAuth) currentSecret() (string, error) {
	if a.minted != nil {
		return a.minted.get(a.now())
	}
	return a.secret, nil
}

// authenticate adds the client's credentials, by the method pinned in
// New, to a request to one of the provider's endpoints that authenticate
// clients (token, revocation, introspection): to form, the request's
// application/x-www-form-urlencoded body, or to header. It makes a fresh
// assertion (new jti) each time.
func (p *provider) authenticate(form url.Values, header http.Header) error {
	return p.auth.apply(form, header)
}

// postForm POSTs form to endpoint as the authenticated client (see
// authenticate) with the provider's HTTP client, and returns the response
// for the caller to read and close. It is for the calls that
// golang.org/x/oauth2 does not make: revocation (RFC 7009 2.1) and
// introspection (RFC 7662 2.1).
func (p *provider) postForm(ctx context.Context, endpoint string, form url.Values) (*http.Response, error) {
	header := http.Header{}
	if err := p.authenticate(form, header); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return p.client.Do(req)
}

// tokenURLParsed is the token endpoint as x/oauth2's requests have it.
func (p *provider) tokenURLParsed() *url.URL {
	u, _ := url.Parse(p.oauth.Endpoint.TokenURL)
	return u
}

// tokenContext returns ctx carrying the HTTP client for x/oauth2's token
// requests: the provider's, which with a method x/oauth2 cannot send
// passes each request through clientTransport.
func (p *provider) tokenContext(ctx context.Context) context.Context {
	c := p.client
	if p.auth.viaTransport() {
		tc := *p.client
		tc.Transport = &clientTransport{base: p.client.Transport, auth: p.auth, tokenURL: p.tokenURLParsed()}
		c = &tc
	}
	return context.WithValue(ctx, oauth2.HTTPClient, c)
}

// clientTransport adds the client's credentials to x/oauth2's requests to
// the token endpoint, which carry only client_id.
type clientTransport struct {
	base     http.RoundTripper
	auth     *clientAuth
	tokenURL *url.URL
}

func (t *clientTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	if req.Method != http.MethodPost || t.tokenURL == nil || req.URL.String() != t.tokenURL.String() || req.Body == nil {
		return base.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	r := req.Clone(req.Context())
	if err := t.auth.apply(form, r.Header); err != nil {
		return nil, err
	}
	enc := []byte(form.Encode())
	r.Body = io.NopCloser(bytes.NewReader(enc))
	r.ContentLength = int64(len(enc))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(enc)), nil }
	return base.RoundTrip(r)
}

// explain adds to a token endpoint error that refuses the client
// (invalid_client) how it authenticated and the provider's reason, when the
// client signed an assertion or minted its secret: the usual causes (a key
// the provider does not know, a clock off by minutes, a wrong audience)
// are then plain in the log. The provider's description comes from its
// back channel, not from the browser, and holds no credential.
func (p *provider) explain(err error) error {
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.Code != "invalid_client" || !(p.auth.usesAssertion() || p.auth.minted != nil) {
		return err
	}
	how := p.auth.method
	switch {
	case p.auth.method == methodKeyJWT:
		how += fmt.Sprintf(" (%s, kid %q, aud %q)", p.auth.alg, p.auth.kid, p.auth.audience)
	case p.auth.method == methodSecretJWT:
		how += fmt.Sprintf(" (%s, aud %q)", p.auth.alg, p.auth.audience)
	case p.auth.minted != nil:
		how += " with a minted client secret (" + p.auth.minted.what + ")"
	}
	desc := ""
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorDescription != "" {
		desc = fmt.Sprintf(": the provider says %q", truncate(re.ErrorDescription, 200))
	}
	return &clientAuthError{err: err, msg: "the provider refused the client's authentication by " + how + desc}
}

// clientAuthError is a token endpoint error that refused the client, with
// how it authenticated.
type clientAuthError struct {
	err error
	msg string
}

func (e *clientAuthError) Error() string { return e.err.Error() + "; " + e.msg }
func (e *clientAuthError) Unwrap() error { return e.err }

// mintedSecret is a client secret the client makes itself: a JWT it signs
// (Sign in with Apple's, apple.go), kept and used until a quarter of its
// lifetime is left, then made again.
type mintedSecret struct {
	what     string // for messages: "ES256, kid ..., iss ..."
	lifetime time.Duration
	make     func(now time.Time, exp time.Time) (string, error)

	mu  sync.Mutex
	jwt string
	exp time.Time
}

func (m *mintedSecret) get(now time.Time) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.jwt != "" && now.Before(m.exp.Add(-m.lifetime/4)) && !now.Before(m.exp.Add(-m.lifetime)) {
		return m.jwt, nil
	}
	exp := now.Add(m.lifetime)
	jwt, err := m.make(now, exp)
	if err != nil {
		return "", fmt.Errorf("make client secret: %w", err)
	}
	m.jwt, m.exp = jwt, exp
	return jwt, nil
}

// opaqueKey signs with a crypto.Signer that go-jose does not know, such as
// a key in an HSM or a cloud KMS.
type opaqueKey struct{ s crypto.Signer }

func (k opaqueKey) Public() *jose.JSONWebKey { return &jose.JSONWebKey{Key: k.s.Public()} }

func (k opaqueKey) Algs() []jose.SignatureAlgorithm {
	algs, _ := keyAlgs(k.s.Public())
	return algs
}

// SignPayload signs as RFC 7518 3 says: RSASSA-PKCS1-v1_5 or RSASSA-PSS
// (salt as long as the hash) over the SHA-2 digest, ECDSA with R and S as
// fixed-size big-endian integers (not ASN.1), Ed25519 over the message.
func (k opaqueKey) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg == jose.EdDSA {
		return k.s.Sign(rand.Reader, payload, crypto.Hash(0))
	}
	var h crypto.Hash
	switch alg {
	case jose.RS256, jose.PS256, jose.ES256:
		h = crypto.SHA256
	case jose.RS384, jose.PS384, jose.ES384:
		h = crypto.SHA384
	case jose.RS512, jose.PS512, jose.ES512:
		h = crypto.SHA512
	default:
		return nil, fmt.Errorf("unsupported algorithm %s", alg)
	}
	d := h.New()
	d.Write(payload)
	digest := d.Sum(nil)
	var opts crypto.SignerOpts = h
	if strings.HasPrefix(string(alg), "PS") {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}
	}
	sig, err := k.s.Sign(rand.Reader, digest, opts)
	if err != nil || !strings.HasPrefix(string(alg), "ES") {
		return sig, err
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) != 0 {
		return nil, errors.New("malformed ECDSA signature")
	}
	size := (k.s.Public().(*ecdsa.PublicKey).Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}

// hasClientAuth reports whether cfg sets any of the client authentication
// or response mode fields, which with Providers belong in each Provider.
func (cfg *Config) hasClientAuth() bool {
	return cfg.ClientKey != nil || cfg.ClientKeyID != "" || cfg.ClientCertificate != nil || cfg.TokenAuthMethod != "" ||
		cfg.ClientAssertionAudience != "" || cfg.ResponseMode != ""
}
