package authtest

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// User is a test user. Its claims go into ID tokens and userinfo
// responses: sub always, email and email_verified with scope "email",
// name and picture with scope "profile", groups with scope "groups",
// and every entry of Extra always (Extra cannot override sub or the
// protocol claims of an ID token).
type User struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Picture       string
	Groups        []string
	Extra         map[string]any
}

// Users returns the default users, alice and bob. Each call returns new
// values, so callers may change them.
func Users() []User {
	return []User{
		{
			Subject:       "alice",
			Email:         "alice@example.com",
			EmailVerified: true,
			Name:          "Alice Example",
			Picture:       "https://example.com/avatars/alice.png",
			Groups:        []string{"admins", "users"},
		},
		{
			Subject:       "bob",
			Email:         "bob@example.com",
			EmailVerified: true,
			Name:          "Bob Example",
			Picture:       "https://example.com/avatars/bob.png",
			Groups:        []string{"users"},
		},
	}
}

// RotationMode says what happens to a refresh token once it has been used.
type RotationMode int

const (
	// Rotate is the default: each refresh issues a new refresh token, and
	// using an old one again fails with invalid_grant and revokes every
	// token of its grant, the newest included (RFC 9700 §4.14.2).
	Rotate RotationMode = iota
	// RotateWithGrace is like Rotate, but a used refresh token keeps
	// working for Config.RefreshGrace after its first use; each use
	// issues a fresh token pair. After the grace period it fails with
	// invalid_grant, and revokes nothing else: a late retry is more
	// likely than theft where clients race.
	RotateWithGrace
	// NoRotation makes refresh tokens reusable until they expire;
	// refresh responses carry no new refresh token.
	NoRotation
)

// Config configures a [Provider]. The zero value of each field is its
// default, so Config{} is a working provider for one client.
type Config struct {
	// Host is the host name in the provider's URLs: "127.0.0.1"
	// (default) or "localhost". It does not change where the provider
	// listens; see Addr.
	Host string
	// Addr is the listen address. Default "127.0.0.1:0".
	Addr string
	// ClientID and ClientSecret are the credentials of the one client
	// the provider knows. Default "test-client" and "test-secret".
	ClientID, ClientSecret string
	// ClientName is the client's name as people read it, in the
	// headings of the provider's pages: "Sign in to Test App". Default
	// "Test App".
	ClientName string
	// RedirectURIs are the client's registered redirect URIs, matched
	// exactly. Provider.AddRedirectURI adds more at any time.
	RedirectURIs []string
	// InsecureRedirectURIPrefixes makes every redirect URI that starts
	// with one of these strings count as registered, such as
	// "http://127.0.0.1:" for a test app on any port. Exact matching is
	// the rule (RFC 6749 §3.1.2.3, RFC 9700 §2.1): whoever controls any
	// URL under a prefix can receive codes issued for the client.
	// Default none.
	InsecureRedirectURIPrefixes []string
	// PostLogoutRedirectURIs are the client's registered
	// post_logout_redirect_uri values for RP-initiated logout, matched
	// exactly. Provider.AddPostLogoutRedirectURI adds more at any time.
	PostLogoutRedirectURIs []string
	// Users are the users who can sign in. Default Users().
	Users []User
	// AutoApprove is the subject of the user that the authorization
	// endpoint signs in when the browser has no provider session. A
	// login_hint naming a known user takes precedence. Default "": show
	// a page listing the users, one button each. NewProvider panics if
	// AutoApprove is not one of Users.
	AutoApprove string
	// SigningAlg is the ID token signing algorithm: "RS256" (default)
	// or "ES256", the client's id_token_signed_response_alg. With
	// ES256, discovery lists RS256 too and the JWKS also holds an RS256
	// key, which signs nothing: OpenID Connect Discovery 1.0 §3
	// requires RS256 among id_token_signing_alg_values_supported.
	SigningAlg string
	// FreshKey generates new signing keys for this provider, at start
	// and on every RotateKey, and never reuses them. By default a
	// provider reuses keys that providers closed earlier in the process
	// gave back (with a new kid), and generates a key only when none is
	// free: a 2048-bit RSA key takes about 100ms of CPU to generate,
	// more than the rest of a typical test, and tests start many
	// providers one after another. Providers open at the same time never
	// share a key either way. Set FreshKey when a token signed by a
	// provider closed earlier must never verify with a later one's keys
	// (the kid differs, but a verifier that ignores kid would accept
	// it). Default false.
	FreshKey bool
	// RequirePKCE rejects authorization requests without a
	// code_challenge. Only the S256 method is ever accepted.
	RequirePKCE bool
	// Rotation says what happens to a used refresh token. Default Rotate.
	Rotation RotationMode
	// RefreshGrace is how long a used refresh token keeps working with
	// RotateWithGrace. Default 10s.
	RefreshGrace time.Duration
	// OfflineAccessOnly issues refresh tokens only when the scope
	// contains offline_access. Default false: refresh tokens are
	// always issued.
	OfflineAccessOnly bool
	// CodeTTL, AccessTokenTTL, IDTokenTTL and RefreshTokenTTL are the
	// lifetimes of what the provider issues, counted from issue.
	// Defaults 1m, 1h, 1h and 24h.
	CodeTTL, AccessTokenTTL, IDTokenTTL, RefreshTokenTTL time.Duration
	// SessionTTL is how long a provider session (a browser signed in
	// at the provider) lasts without use; each authorization request
	// it approves starts the period again. Expired sessions, codes and
	// tokens are forgotten once there are many, so a long-running
	// provider stays small. Default 24h.
	SessionTTL time.Duration
	// TokenAuthMethods are the client authentication methods the token
	// and revocation endpoints accept and advertise:
	// "client_secret_basic", "client_secret_post", "none" (a public
	// client that sends only client_id), and the JWT client assertions
	// of RFC 7523 (OpenID Connect Core 1.0 section 9):
	// "client_secret_jwt" (HMAC with ClientSecret, which must then be 32
	// bytes or more) and "private_key_jwt" (signed with a key of
	// ClientKeys). Default {"client_secret_basic",
	// "client_secret_post"}.
	TokenAuthMethods []string
	// ClientKeys are the client's public keys for private_key_jwt, by
	// key ID (kid): RSA, ECDSA or Ed25519. An assertion without a kid
	// may be signed by any of them. Provider.AddClientKey adds more at
	// any time. Default none.
	ClientKeys map[string]crypto.PublicKey
	// IssuerParameter adds iss to authorization responses and
	// advertises authorization_response_iss_parameter_supported
	// (RFC 9207). Default false.
	IssuerParameter bool
	// BackchannelLogoutURI is the client's registered
	// backchannel_logout_uri, where [Provider.BackchannelLogout] posts
	// logout tokens. Provider.SetBackchannelLogoutURI changes it at
	// any time. Default "": none.
	BackchannelLogoutURI string
}

// Provider is an OpenID Connect provider serving on a loopback address,
// shaped like [net/http/httptest.Server]. It knows one client, signs ID
// tokens with one current key, and keeps all state in memory. Its
// methods are safe for concurrent use.
//
// Endpoints, relative to URL:
//
//	/.well-known/openid-configuration  discovery
//	/authorize                         authorization (GET or POST)
//	/token                             token (authorization_code, refresh_token)
//	/userinfo                          userinfo (GET or POST, Bearer token)
//	/jwks                              public signing keys
//	/revoke                            token revocation (RFC 7009)
//	/introspect                        token introspection (RFC 7662)
//	/end_session                       RP-initiated logout
//
// Its clock is real time plus every [Provider.Advance]: codes and tokens
// expire by it, and ID token iat and exp follow it.
type Provider struct {
	// URL is the issuer, such as http://127.0.0.1:PORT, with no
	// trailing slash.
	URL string
	// ClientID and ClientSecret are the client's credentials.
	ClientID, ClientSecret string

	cfg       Config // defaults filled in; read-only after NewProvider
	addr      string // where the listener is, for dialing
	srv       *http.Server
	transport *http.Transport
	discovery []byte
	done      chan struct{} // closed by Close
	closeOnce sync.Once

	leaseMu sync.Mutex                                  // guards leased; never held with mu
	leased  map[jose.SignatureAlgorithm][]crypto.Signer // pool keys to give back on Close

	mu           sync.Mutex
	offset       time.Duration // sum of Advance calls
	users        map[string]User
	order        []string // subjects, in the order they were added
	redirectURIs map[string]bool
	logoutURIs   map[string]bool
	backchannel  string        // backchannel_logout_uri, or ""
	keys         []*signingKey // published in JWKS; the last one signs
	rs256        *signingKey   // with SigningAlg ES256: published, never signs, shared
	sessions     map[string]*session
	codes        map[string]*authCode
	tokens       map[string]*token
	sweepMin     int // minSweep, or less in tests
	sweepAt      int // see sweep
	log          []Request
	grants       map[string]int
	revocations  int
	faults       faults
	clientKeys   map[string]crypto.PublicKey // Config.ClientKeys and AddClientKey
	assertions   map[string]time.Time        // jti of client assertions used, until they expire
}

var defaultAuthMethods = []string{"client_secret_basic", "client_secret_post"}

// NewProvider starts a provider and returns it. The caller should call
// Close when finished. NewProvider panics if cfg is invalid or it cannot
// listen, like [net/http/httptest.NewServer].
func NewProvider(cfg Config) *Provider {
	c := withDefaults(cfg)
	alg, err := parseAlg(c.SigningAlg)
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		panic(fmt.Sprintf("authtest: failed to listen on %s: %v", c.Addr, err))
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	p := &Provider{
		URL:          "http://" + net.JoinHostPort(c.Host, port),
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		cfg:          c,
		addr:         ln.Addr().String(),
		done:         make(chan struct{}),
		users:        make(map[string]User),
		redirectURIs: make(map[string]bool),
		logoutURIs:   make(map[string]bool),
		leased:       make(map[jose.SignatureAlgorithm][]crypto.Signer),
		sessions:     make(map[string]*session),
		codes:        make(map[string]*authCode),
		tokens:       make(map[string]*token),
		grants:       make(map[string]int),
		backchannel:  c.BackchannelLogoutURI,
		clientKeys:   maps.Clone(c.ClientKeys),
		assertions:   make(map[string]time.Time),
		sweepMin:     minSweep,
	}
	for _, u := range c.Users {
		p.addUser(u)
	}
	if _, ok := p.users[c.AutoApprove]; c.AutoApprove != "" && !ok {
		ln.Close()
		panic(fmt.Sprintf("authtest: Config.AutoApprove %q is not one of Config.Users", c.AutoApprove))
	}
	key, err := p.newKey(alg)
	if err != nil {
		ln.Close()
		panic(fmt.Sprintf("authtest: generating signing key: %v", err))
	}
	p.keys = []*signingKey{key}
	if alg != jose.RS256 {
		// OIDC Discovery 1.0 §3: RS256 must be among the supported
		// algorithms. The client's registered algorithm is SigningAlg,
		// so this key never signs, and every provider can publish the
		// same one.
		if p.rs256, err = rs256Key(); err != nil {
			ln.Close()
			panic(fmt.Sprintf("authtest: generating signing key: %v", err))
		}
	}
	for _, u := range c.RedirectURIs {
		p.redirectURIs[u] = true
	}
	for _, u := range c.PostLogoutRedirectURIs {
		p.logoutURIs[u] = true
	}
	p.discovery = p.discoveryDocument()
	p.transport = p.newTransport()
	p.srv = &http.Server{
		Handler:           p.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // clients hanging up are not news
	}
	go p.srv.Serve(ln)
	return p
}

func withDefaults(c Config) Config {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if c.ClientID == "" {
		c.ClientID = "test-client"
	}
	if c.ClientSecret == "" {
		c.ClientSecret = "test-secret"
	}
	if c.ClientName == "" {
		c.ClientName = "Test App"
	}
	if len(c.Users) == 0 {
		c.Users = Users()
	}
	if c.SigningAlg == "" {
		c.SigningAlg = "RS256"
	}
	if c.RefreshGrace == 0 {
		c.RefreshGrace = 10 * time.Second
	}
	defaultDuration(&c.CodeTTL, time.Minute)
	defaultDuration(&c.AccessTokenTTL, time.Hour)
	defaultDuration(&c.IDTokenTTL, time.Hour)
	defaultDuration(&c.RefreshTokenTTL, 24*time.Hour)
	defaultDuration(&c.SessionTTL, 24*time.Hour)
	if len(c.TokenAuthMethods) == 0 {
		c.TokenAuthMethods = defaultAuthMethods
	}
	for _, m := range c.TokenAuthMethods {
		if !slices.Contains([]string{"client_secret_basic", "client_secret_post", "none", "client_secret_jwt", "private_key_jwt"}, m) {
			panic(fmt.Sprintf("authtest: unsupported Config.TokenAuthMethods entry %q", m))
		}
	}
	// Own every slice, so the caller's later changes don't reach us.
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.InsecureRedirectURIPrefixes = slices.Clone(c.InsecureRedirectURIPrefixes)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	c.Users = slices.Clone(c.Users)
	c.TokenAuthMethods = slices.Clone(c.TokenAuthMethods)
	c.ClientKeys = maps.Clone(c.ClientKeys)
	return c
}

func defaultDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// Close shuts the provider down and waits for requests in progress to
// finish. Injected token delays end early.
func (p *Provider) Close() {
	p.closeOnce.Do(func() {
		close(p.done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.srv.Shutdown(ctx); err != nil {
			p.srv.Close()
		}
		p.transport.CloseIdleConnections()
		p.releaseKeys()
	})
}

// Client returns an HTTP client that reaches the provider, even when
// Config.Host is a name that does not resolve to the listen address.
// It has no cookie jar; see [Provider.Browser] for one that does.
func (p *Provider) Client() *http.Client {
	return &http.Client{Transport: p.transport}
}

// newTransport returns a transport that dials the listener for the
// provider's host:port and everything else as usual.
func (p *Provider) newTransport() *http.Transport {
	u, _ := url.Parse(p.URL)
	var d net.Dialer
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr == u.Host {
				addr = p.addr
			}
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
}

// AddRedirectURI registers another redirect URI for the client.
func (p *Provider) AddRedirectURI(uri string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.redirectURIs[uri] = true
}

// AddPostLogoutRedirectURI registers another post_logout_redirect_uri
// for the client.
func (p *Provider) AddPostLogoutRedirectURI(uri string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logoutURIs[uri] = true
}

// AddUser adds a user, or replaces the user with the same Subject.
// Tokens already issued to that user get the new claims from then on.
// It panics if u.Subject is empty.
func (p *Provider) AddUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.addUser(u)
}

func (p *Provider) addUser(u User) {
	if u.Subject == "" {
		panic("authtest: user without Subject")
	}
	u.Groups = slices.Clone(u.Groups)
	u.Extra = maps.Clone(u.Extra)
	if _, ok := p.users[u.Subject]; !ok {
		p.order = append(p.order, u.Subject)
	}
	p.users[u.Subject] = u
}

// Now returns the provider's clock: real time plus all Advance calls.
func (p *Provider) Now() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.now()
}

// now is Now for callers that hold p.mu.
func (p *Provider) now() time.Time {
	return time.Now().Add(p.offset)
}

// Advance moves the provider's clock forward by d, so that codes and
// tokens expire without waiting.
func (p *Provider) Advance(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.offset += d
}

var endpoints = map[string]string{
	"/.well-known/openid-configuration": "discovery",
	"/authorize":                        "authorize",
	"/token":                            "token",
	"/userinfo":                         "userinfo",
	"/jwks":                             "jwks",
	"/revoke":                           "revoke",
	"/introspect":                       "introspect",
	"/end_session":                      "end_session",
}

func (p *Provider) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.serveDiscovery)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /userinfo", p.userinfo)
	mux.HandleFunc("POST /userinfo", p.userinfo)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("POST /revoke", p.revoke)
	mux.HandleFunc("POST /introspect", p.introspect)
	mux.HandleFunc("GET /end_session", p.endSession)
	mux.HandleFunc("POST /end_session", p.endSession)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		err := r.ParseForm()
		p.record(r)
		if err != nil {
			http.Error(w, "authtest: malformed request: "+err.Error(), http.StatusBadRequest)
			return
		}
		// "Parameters sent without a value MUST be treated as if they
		// were omitted from the request" (RFC 6749 §3.1, §3.2).
		dropEmpty(r.Form)
		dropEmpty(r.PostForm)
		mux.ServeHTTP(w, r)
	})
}

// dropEmpty removes the empty values from v, and the names left with
// none.
func dropEmpty(v url.Values) {
	for k, vs := range v {
		vs = slices.DeleteFunc(vs, func(s string) bool { return s == "" })
		if len(vs) == 0 {
			delete(v, k)
		} else {
			v[k] = vs
		}
	}
}

// discoveryDocument returns the OpenID Provider Metadata (OIDC
// Discovery 1.0 §3).
func (p *Provider) discoveryDocument() []byte {
	algs := []string{p.cfg.SigningAlg}
	if p.rs256 != nil {
		algs = append(algs, string(jose.RS256)) // §3: RS256 MUST be included
	}
	doc := struct {
		Issuer                string   `json:"issuer"`
		AuthorizationEndpoint string   `json:"authorization_endpoint"`
		TokenEndpoint         string   `json:"token_endpoint"`
		UserinfoEndpoint      string   `json:"userinfo_endpoint"`
		JWKSURI               string   `json:"jwks_uri"`
		EndSessionEndpoint    string   `json:"end_session_endpoint"`
		RevocationEndpoint    string   `json:"revocation_endpoint"`
		IntrospectionEndpoint string   `json:"introspection_endpoint"`
		ResponseTypes         []string `json:"response_types_supported"`
		ResponseModes         []string `json:"response_modes_supported"`
		SubjectTypes          []string `json:"subject_types_supported"`
		IDTokenAlgs           []string `json:"id_token_signing_alg_values_supported"`
		Scopes                []string `json:"scopes_supported"`
		Claims                []string `json:"claims_supported"`
		GrantTypes            []string `json:"grant_types_supported"`
		CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
		TokenAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
		TokenAuthAlgs         []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
		RevocationAuthMethods []string `json:"revocation_endpoint_auth_methods_supported"`
		RevocationAuthAlgs    []string `json:"revocation_endpoint_auth_signing_alg_values_supported,omitempty"`
		IntrospectAuthMethods []string `json:"introspection_endpoint_auth_methods_supported"`
		IntrospectAuthAlgs    []string `json:"introspection_endpoint_auth_signing_alg_values_supported,omitempty"`
		ClaimsParameter       bool     `json:"claims_parameter_supported"`
		RequestParameter      bool     `json:"request_parameter_supported"`
		RequestURIParameter   bool     `json:"request_uri_parameter_supported"`
		IssuerParameter       bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
		Backchannel           bool     `json:"backchannel_logout_supported"`
		BackchannelSession    bool     `json:"backchannel_logout_session_supported"`
	}{
		Issuer:                p.URL,
		AuthorizationEndpoint: p.URL + "/authorize",
		TokenEndpoint:         p.URL + "/token",
		UserinfoEndpoint:      p.URL + "/userinfo",
		JWKSURI:               p.URL + "/jwks",
		EndSessionEndpoint:    p.URL + "/end_session",
		RevocationEndpoint:    p.URL + "/revoke",
		IntrospectionEndpoint: p.URL + "/introspect",
		ResponseTypes:         []string{"code"},
		ResponseModes:         []string{"query", "form_post"},
		SubjectTypes:          []string{"public"},
		IDTokenAlgs:           algs,
		Scopes:                []string{"openid", "email", "profile", "offline_access", "groups"},
		Claims: []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "sid",
			"email", "email_verified", "name", "picture", "groups"},
		GrantTypes:            []string{"authorization_code", "refresh_token"},
		CodeChallengeMethods:  []string{"S256"},
		TokenAuthMethods:      p.cfg.TokenAuthMethods,
		TokenAuthAlgs:         p.assertionAlgs(),
		RevocationAuthMethods: p.cfg.TokenAuthMethods,
		RevocationAuthAlgs:    p.assertionAlgs(),
		IntrospectAuthMethods: p.cfg.TokenAuthMethods,
		IntrospectAuthAlgs:    p.assertionAlgs(),
		IssuerParameter:       p.cfg.IssuerParameter,
		Backchannel:           true,
		BackchannelSession:    true,
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

func (p *Provider) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(p.discovery)
}
