package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"
)

// This file accepts OAuth 2.0 bearer access tokens (RFC 6750) on the
// application's routes, next to session cookies, when
// Config.BearerAudiences is set: a SPA, a mobile app or another service
// that calls with "Authorization: Bearer" gets the same User, Token and
// Client as a signed-in browser. It is the whole answer to "which tokens
// are accepted, how are they checked, and what does that cost?".
//
// Which provider: a JWT names its issuer (iss), read from the unverified
// payload only to pick the provider; an issuer that is none of ours is
// refused without any network call. An opaque token is introspected
// (RFC 7662) at each provider whose discovery document names an
// introspection_endpoint, with the client's credentials.
//
// A JWT's claims are checked before its signature, so that most bad tokens
// cost no cryptography: typ, alg, exp, nbf, iat, aud (one of
// BearerAudiences), sub, no claim named twice, and not an ID token. Then
// the signature, with the provider's key set (keys.go, the same keys and
// algorithms as ID tokens): a key it does not hold is fetched from a
// budget of bearer tokens' own, since anyone can send one. Last, the
// provider's own checks (quirks), as for ID tokens.
//
// Cost: verified tokens (and refused ones whose verdict cost a signature
// check or a network call) are cached, keyed by a seeded hash of the
// token and confirmed by comparing the whole token in constant time: a
// JWT until it expires, or bearerCacheMax, whichever is first; an
// introspection answer for Config.BearerIntrospectionTTL, never beyond
// its exp. Concurrent first requests of one token share one check.
//
// Answers (RFC 6750 §3), written by RequireLogin and RequireScope, never
// by Handler, which lets a request with a refused token through as
// anonymous: 401 with error="invalid_token" and a fixed description, 400
// with invalid_request for a malformed Authorization header, 403 with
// insufficient_scope, 503 when the provider cannot be asked. A request
// that sent a bearer token is never redirected. No log record holds a
// token.
//
// Scopes come from the token's scope (RFC 9068: a space-separated string)
// and scp (Entra ID: a space-separated string; Ory Hydra, Okta: an array),
// or from the introspection answer's scope. A cookie session's scopes are
// those its token response granted, or those requested when the provider
// did not say (RFC 6749 §5.1): see session.scope.

const (
	// bearerCacheMax bounds how long a verified JWT is trusted without
	// another look, whatever its exp: its provider's checks run again
	// (an allowed tenant removed, say), and the cache holds no token
	// for hours.
	bearerCacheMax = 5 * time.Minute
	// maxIntrospection bounds the introspection answer we read.
	maxIntrospection = 1 << 20
	// bearerTimeout bounds the introspection of one token.
	bearerTimeout = 10 * time.Second
	// maxBearerToken bounds the tokens we look at: an Entra ID token with
	// a user's many groups is a few kilobytes, and net/http lets a header
	// be a megabyte.
	maxBearerToken = 64 << 10
)

// bearerAuth verifies bearer tokens: one per Middleware, nil when
// Config.BearerAudiences is empty.
type bearerAuth struct {
	audiences     []string
	requireATJWT  bool
	introspectTTL time.Duration // 0: introspection answers are not cached
	skew          time.Duration
	now           func() time.Time
	log           *slog.Logger

	issuers       map[string][]*bearerIssuer // by fixed issuer
	templated     []*bearerIssuer            // issuers that depend on the user (Entra's multi-tenant endpoints)
	introspectors []*bearerIssuer            // those with an introspection endpoint, in Config order

	seed     maphash.Seed
	verified *boundedCache[uint64, *bearerState]
	refused  *boundedCache[uint64, *bearerState]
	flights  singleflight.Group
}

// bearerIssuer is one OpenID Connect provider, as bearer tokens see it.
type bearerIssuer struct {
	p      *provider
	k      *oidcKind
	budget *fetchBudget // key fetches for bearer tokens; guarded by k.keys.mu
	// introspection is the RFC 7662 endpoint, "" when there is none.
	introspection string
}

// bearerState is what a bearer token turned out to be: verified (ss set)
// or refused (status and the answer's error code and description). A
// cached one is shared by every request that sends the same token and
// never changes.
type bearerState struct {
	token string        // the token itself, to confirm a cache hit
	ss    *sessionState // the token as a session (user, Token, Client); nil when refused
	scope string        // the scopes granted, space-separated

	status int    // refused: 400, 401 or 503
	code   string // refused: RFC 6750 §3.1's error code, or temporarily_unavailable
	desc   string // refused: a fixed sentence for error_description
}

func refusal(status int, code, desc string) *bearerState {
	return &bearerState{status: status, code: code, desc: desc}
}

// invalidToken is a token that is not acceptable: expired, for someone
// else, forged...
func invalidToken(desc string) *bearerState {
	return refusal(http.StatusUnauthorized, "invalid_token", desc)
}

// providerDown: the provider could not be asked about the token.
func providerDown(desc string) *bearerState {
	return refusal(http.StatusServiceUnavailable, "temporarily_unavailable", desc)
}

// validateBearer checks the bearer settings that need no network.
func validateBearer(cfg *Config) error {
	for i, a := range cfg.BearerAudiences {
		if a == "" {
			return fmt.Errorf("auth: Config.BearerAudiences[%d] is empty", i)
		}
	}
	return nil
}

// newBearer returns the bearer token verifier of cfg, or nil without
// BearerAudiences. It needs an OpenID Connect provider: plain OAuth 2.0
// ones have no key set and no introspection to verify tokens with.
func newBearer(cfg *Config, ps providers, e *env) (*bearerAuth, error) {
	if len(cfg.BearerAudiences) == 0 {
		return nil, nil
	}
	b := &bearerAuth{
		audiences:     slices.Clone(cfg.BearerAudiences),
		requireATJWT:  cfg.BearerRequireATJWT,
		introspectTTL: cfg.BearerIntrospectionTTL,
		skew:          e.skew,
		now:           e.now,
		log:           e.log,
		issuers:       map[string][]*bearerIssuer{},
		seed:          maphash.MakeSeed(),
		verified:      newBoundedCache[uint64, *bearerState](10000, 32<<20),
		refused:       newBoundedCache[uint64, *bearerState](10000, 8<<20),
	}
	for _, p := range ps {
		k, ok := p.kind.(*oidcKind)
		if !ok {
			continue
		}
		is := &bearerIssuer{p: p, k: k, budget: newFetchBudget(2, 30*time.Second)}
		var doc struct {
			Introspection string `json:"introspection_endpoint"`
		}
		if k.remote.Claims(&doc) == nil && doc.Introspection != "" {
			if u, err := url.Parse(doc.Introspection); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
				is.introspection = doc.Introspection
				b.introspectors = append(b.introspectors, is)
			}
		}
		if iss := k.fixedIssuer(); iss != "" {
			b.issuers[iss] = append(b.issuers[iss], is)
		} else {
			b.templated = append(b.templated, is)
		}
	}
	if len(b.issuers) == 0 && len(b.templated) == 0 {
		return nil, errors.New("auth: Config.BearerAudiences needs an OpenID Connect provider: plain OAuth 2.0 providers have no way to verify access tokens")
	}
	return b, nil
}

// beginBearer starts the request's state from its bearer token, when the
// request sends one (ok); m.bearer is not nil. The session
// cookie is then not read: the bearer token wins. A refused token makes
// the request anonymous, with the reason for RequireLogin to answer.
func (m *Middleware) beginBearer(w http.ResponseWriter, r *http.Request) (st *reqState, ok bool) {
	bs := m.bearer.authenticate(r)
	if bs == nil {
		return nil, false
	}
	st = &reqState{ResponseWriter: w, m: m, r: r, bearer: bs}
	if bs.ss != nil {
		m.metrics.count(EventBearer, bs.ss.user.Provider)
		st.ss.Store(bs.ss)
	} else {
		m.metrics.count(EventBearerRefused, "")
	}
	return st, true
}

// malformedHeader answers an Authorization header that is not one
// well-formed bearer token.
var malformedHeader = refusal(http.StatusBadRequest, "invalid_request", "the Authorization header is malformed")

// authenticate returns what the request's bearer token is, or nil when
// the request sends none (no Authorization header, or another scheme).
func (b *bearerAuth) authenticate(r *http.Request) *bearerState {
	vals := r.Header["Authorization"]
	if len(vals) == 0 {
		return nil
	}
	tok, isBearer := bearerCredentials(vals[0])
	switch {
	case !isBearer:
		if len(vals) > 1 && slices.ContainsFunc(vals[1:], func(v string) bool { _, is := bearerCredentials(v); return is }) {
			return malformedHeader
		}
		return nil
	case len(vals) > 1:
		// RFC 6750 §3.1: more than one way of sending a token is
		// invalid_request (and so is a malformed token: see verify).
		return malformedHeader
	}
	return b.verify(r.Context(), tok)
}

// bearerCredentials returns the credentials of an Authorization header
// value of the Bearer scheme (RFC 6750 §2.1: "Bearer" 1*SP b64token; the
// scheme is case-insensitive, RFC 9110 §11.1).
func bearerCredentials(v string) (tok string, isBearer bool) {
	if len(v) < 6 || !strings.EqualFold(v[:6], "Bearer") || (len(v) > 6 && v[6] != ' ') {
		return "", false
	}
	return strings.TrimLeft(v[6:], " "), true
}

// validToken reports whether tok is a b64token (RFC 6750 §2.1):
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func validToken(tok string) bool {
	end := len(strings.TrimRight(tok, "="))
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		if c := tok[i]; !b64tokenChar[c] {
			return false
		}
	}
	return true
}

var b64tokenChar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", byte(c)) >= 0
	}
	return t
}()

// verify returns what tok is: from the caches, or checked once for every
// request that asks at the same time.
func (b *bearerAuth) verify(ctx context.Context, tok string) *bearerState {
	if len(tok) > maxBearerToken {
		return invalidToken("the access token is too large")
	}
	h := maphash.String(b.seed, tok)
	now := b.now()
	if bs := cached(b.verified, h, tok, now); bs != nil {
		return bs
	}
	if bs := cached(b.refused, h, tok, now); bs != nil {
		return bs
	}
	if !validToken(tok) {
		return malformedHeader // checked here, as cached tokens were valid
	}
	v, _, _ := b.flights.Do(tok, func() (any, error) {
		now := b.now()
		if bs := cached(b.verified, h, tok, now); bs != nil {
			return bs, nil
		}
		// One caller giving up must not fail the others waiting on this
		// check. (Key fetches have a deadline of their own; introspection
		// gets one in checkOpaque.)
		bs, until := b.check(context.WithoutCancel(ctx), tok)
		bs.token = tok
		size := 2*len(tok) + 512
		switch {
		case until.IsZero():
		case bs.ss != nil:
			b.verified.put(h, bs, size+len(bs.ss.user.Claims)+len(bs.scope), until, now)
		default:
			b.refused.put(h, bs, size, until, now)
		}
		return bs, nil
	})
	return v.(*bearerState)
}

// cached returns the cache's state of tok, if it holds one that has not
// expired. The entry found by the hash is confirmed by comparing the
// whole token; that comparison need not take constant time: it runs only
// when the seeded hash of tok matches, which nobody without the seed can
// arrange for a token other than the one cached.
func cached(c *boundedCache[uint64, *bearerState], h uint64, tok string, now time.Time) *bearerState {
	bs, ok := c.get(h, now)
	if !ok || bs.token != tok {
		return nil
	}
	return bs
}

// check checks a token that is in no cache, and returns until when its
// verdict may be cached (zero: not at all).
func (b *bearerAuth) check(ctx context.Context, tok string) (*bearerState, time.Time) {
	bs, until := b.checkToken(ctx, tok)
	if bs.ss == nil {
		b.log.DebugContext(ctx, "auth: bearer token refused", "reason", bs.desc)
	}
	return bs, until
}

func (b *bearerAuth) checkToken(ctx context.Context, tok string) (*bearerState, time.Time) {
	header, payload, isJWT := splitJWT(tok)
	if !isJWT {
		return b.checkOpaque(ctx, tok)
	}
	var c accessClaims
	if err := c.read(payload); errors.Is(err, ErrTokenInvalid) {
		return invalidToken("the access token names a claim twice"), time.Time{}
	} else if err != nil {
		return invalidToken("the access token's claims are malformed"), time.Time{}
	}
	cands := b.issuers[c.iss]
	if cands == nil {
		for _, is := range b.templated {
			if is.k.templateMatches(c.iss) {
				cands = append(cands, is)
			}
		}
	}
	if len(cands) == 0 {
		return invalidToken("the access token's issuer is not accepted here"), time.Time{}
	}
	var first *bearerState
	var firstUntil time.Time
	for _, is := range cands {
		bs, until := b.checkJWT(ctx, is, cands, tok, header, payload, &c)
		if bs.ss != nil {
			return bs, until
		}
		if first == nil {
			first, firstUntil = bs, until
		}
	}
	return first, firstUntil
}

// templateMatches reports whether iss is the provider's issuer template
// with a tenant in place of its placeholder. quirks.checkIDToken then
// checks that tenant against the token's own.
func (k *oidcKind) templateMatches(iss string) bool {
	pre, post, ok := strings.Cut(k.issuer, tenantPlaceholder)
	return ok && len(iss) > len(pre)+len(post) && strings.HasPrefix(iss, pre) && strings.HasSuffix(iss, post) &&
		!strings.Contains(iss[len(pre):len(iss)-len(post)], "/")
}

// checkJWT checks a JWT access token from is (cands: every provider of
// its issuer): its claims first, then its signature, then the provider's
// own checks.
func (b *bearerAuth) checkJWT(ctx context.Context, is *bearerIssuer, cands []*bearerIssuer, raw string, header, payload []byte, c *accessClaims) (*bearerState, time.Time) {
	h, err := readJOSEHeader(header)
	if err != nil {
		return invalidToken("the access token's header is malformed"), time.Time{}
	}
	now := b.now()
	nowSec := float64(now.Unix())
	skew := b.skew.Seconds()
	switch {
	case !signingAlgs[h.alg] || !slices.Contains(is.k.config.SupportedSigningAlgs, h.alg):
		return invalidToken("the access token is signed with an algorithm the provider does not use"), time.Time{}
	case !accessTokenType(h.typ, b.requireATJWT):
		return invalidToken("the token is not an access token"), time.Time{}
	case !c.hasExp:
		return invalidToken("the access token has no expiry"), time.Time{}
	case c.exp+skew <= nowSec:
		return invalidToken("the access token expired"), time.Time{}
	case c.hasNbf && c.nbf > nowSec+skew:
		return invalidToken("the access token is not valid yet"), time.Time{}
	case c.hasIat && c.iat > nowSec+skew:
		return invalidToken("the access token is issued in the future"), time.Time{}
	case !b.forUs(c.aud):
		return invalidToken("the access token is not for this audience"), time.Time{}
	case c.sub == "":
		return invalidToken("the access token has no subject"), time.Time{}
	case c.idTokenLike(h.typ, cands):
		return invalidToken("an ID token is not an access token"), time.Time{}
	}
	// The claims can be right: now the signature. A token that names a
	// key we do not hold fetches the keys, from the budget of bearer
	// tokens.
	until := time.Unix(int64(c.exp+skew), 0)
	until = minTime(until, now.Add(bearerCacheMax))
	if _, err := is.k.keys.verify(ctx, raw, is.budget); err != nil {
		switch {
		case errors.Is(err, errKeysUnavailable):
			b.log.WarnContext(ctx, "auth: bearer token signed with a key that cannot be fetched now", "provider", is.p.name, "error", err)
			return providerDown("the provider's signing keys are unavailable"), time.Time{}
		case errors.Is(err, errUnknownKey):
			return invalidToken("the access token is signed with an unknown key"), time.Time{}
		}
		return invalidToken("the access token's signature is invalid"), until
	}
	if err := is.p.quirks.checkIDToken(is.k, payload); err != nil {
		b.log.DebugContext(ctx, "auth: bearer token refused by the provider's checks", "provider", is.p.name, "error", err)
		return invalidToken("the access token is not accepted here"), until
	}
	return b.accept(is.p, raw, payload, c, until)
}

// accept makes a verified token's state: its user, as a session with
// only an access token (so Client never refreshes it), and its scopes.
func (b *bearerAuth) accept(p *provider, raw string, claims []byte, c *accessClaims, until time.Time) (*bearerState, time.Time) {
	u := new(Identity)
	*u = c.user
	u.Provider, u.Claims = p.name, claims
	p.quirks.identity(u)
	s := &session{provider: p.name, binding: p.binding, access: raw, unpacked: true}
	end := until
	if c.hasExp {
		s.expiry = int64(c.exp)
		end = time.Unix(s.expiry, 0)
	}
	ss := &sessionState{sess: s, user: u, end: end}
	return &bearerState{ss: ss, scope: c.scope}, until
}

// forUs reports whether aud names one of the accepted audiences.
func (b *bearerAuth) forUs(aud []string) bool {
	for _, a := range aud {
		if slices.Contains(b.audiences, a) {
			return true
		}
	}
	return false
}

// accessTokenType reports whether a JWT's typ header suits an access
// token: at+jwt (RFC 9068 §2.1; the "application/" prefix may be left
// out, and media types compare case-insensitively, RFC 7515 §4.1.9), or,
// unless strict, JWT or none, as Entra ID, Auth0 and Keycloak send.
// Another type names another kind of token (logout+jwt, dpop+jwt...):
// refused (RFC 8725 §3.11).
func accessTokenType(typ string, strict bool) bool {
	t := strings.ToLower(typ)
	t = strings.TrimPrefix(t, "application/")
	if t == "at+jwt" {
		return true
	}
	return !strict && (typ == "" || t == "jwt")
}

// idTokenLike reports whether a JWT that passed for an access token is an
// ID token (OpenID Connect Core 2), which must never be accepted as one:
// it proves who signed in to a client, not what the bearer may do. A
// token typed at+jwt is not. Any other is, when it has an at_hash or
// c_hash (only ID tokens carry them), Keycloak's typ claim "ID", or when
// its audience is the client ID of a provider of its issuer (as an ID
// token's always is) and it has a nonce, or no scope at all (an access
// token for the client's own API, as Entra issues them, has scp).
func (c *accessClaims) idTokenLike(typ string, cands []*bearerIssuer) bool {
	if accessTokenType(typ, true) {
		return false
	}
	if c.atHash || c.cHash || strings.EqualFold(c.typ, "ID") {
		return true
	}
	for _, is := range cands {
		if slices.Contains(c.aud, is.p.clientID) && (c.nonce || !c.hasScope) {
			return true
		}
	}
	return false
}

// accessClaims are the claims of an access token (a JWT's payload, or an
// introspection answer) that decide whether it is accepted, and the user
// they name.
type accessClaims struct {
	iss, sub, scope, typ   string
	aud                    []string
	exp, nbf, iat          float64
	hasExp, hasNbf, hasIat bool
	hasScope               bool // scope or scp, even empty
	nonce, atHash, cHash   bool
	active                 bool   // introspection: "active": true
	tokenType, tokenUse    string // introspection: token_type; Ory Hydra's token_use
	scopeParts             []string
	malformed              bool     // a claim of the wrong type
	user                   Identity // the fields Identity names; not Provider, Claims
}

// read scans a claims object, once, for the claims accessClaims holds.
// Names are matched as encoding/json matches them (see claimField); an
// object that names a claim twice (see checkClaimNames), or a claim of
// the wrong type, is malformed.
func (c *accessClaims) read(claims []byte) error {
	var buf [32]string
	names := buf[:0]
	plain := true // every name is ASCII without escapes or capitals: fold-equal only when equal
	err := scanObject(string(claims), func(k, val string) {
		names = append(names, k)
		for i := 0; i < len(k) && plain; i++ {
			if b := k[i]; b >= 0x80 || b == '\\' || 'A' <= b && b <= 'Z' {
				plain = false
			}
		}
		c.user.setField(k, val)
		switch accessClaimName(k) {
		case "iss":
			c.iss = c.str(val)
		case "sub":
			c.sub = c.str(val)
		case "aud":
			c.aud = c.strings(val)
		case "exp":
			c.exp, c.hasExp = c.num(val)
		case "nbf":
			c.nbf, c.hasNbf = c.num(val)
		case "iat":
			c.iat, c.hasIat = c.num(val)
		case "scope", "scp":
			c.hasScope = true
			c.scopeParts = append(c.scopeParts, c.strings(val)...)
		case "typ":
			c.typ = c.str(val)
		case "nonce":
			c.nonce = true
		case "at_hash":
			c.atHash = true
		case "c_hash":
			c.cHash = true
		case "active":
			c.active = val == "true"
		case "token_type":
			c.tokenType = c.str(val)
		case "token_use":
			c.tokenUse = c.str(val)
		}
	})
	if err != nil || c.malformed {
		return errClaims
	}
	if !plain {
		if err := checkClaimNames(claims); err != nil {
			return err
		}
	} else {
		slices.Sort(names)
		for i := 1; i < len(names); i++ {
			if names[i] == names[i-1] {
				return fmt.Errorf("%w: a claim name appears twice", ErrTokenInvalid)
			}
		}
	}
	c.scope = joinScopes(c.scopeParts)
	return nil
}

// str reads a JSON string; anything else marks the claims malformed.
func (c *accessClaims) str(val string) string {
	if len(val) == 0 || val[0] != '"' {
		c.malformed = true
		return ""
	}
	return jsonString(val)
}

// num reads a JSON number.
func (c *accessClaims) num(val string) (float64, bool) {
	f, err := strconv.ParseFloat(val, 64)
	if err != nil {
		c.malformed = true
		return 0, false
	}
	return f, true
}

// strings reads a JSON string, as one element, or an array of strings;
// for scope and scp, a string is split at spaces.
func (c *accessClaims) strings(val string) []string {
	if len(val) > 0 && val[0] == '"' {
		return []string{jsonString(val)}
	}
	var list []string
	if json.Unmarshal([]byte(val), &list) != nil {
		c.malformed = true
	}
	return list
}

// accessClaimNames are the claims accessClaims reads.
var accessClaimNames = [...]string{"iss", "sub", "aud", "exp", "nbf", "iat", "scope", "scp", "typ", "nonce", "at_hash", "c_hash", "active", "token_type", "token_use"}

// accessClaimName returns the claim of accessClaimNames that the raw
// object key k stands for, as encoding/json would match it, or k itself
// (see claimName).
func accessClaimName(k string) string { return claimName(k, accessClaimNames[:]) }

// joinScopes returns the scopes of scope and scp values as one
// space-separated list: each string value may itself be a list.
func joinScopes(parts []string) string {
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return normalizeScope(parts[0])
	}
	return normalizeScope(strings.Join(parts, " "))
}

// normalizeScope returns a granted scope list separated by single
// spaces. A list with commas and no space is split at the commas: GitHub
// and Facebook send their scopes that way, though RFC 6749 §3.3 says
// spaces.
func normalizeScope(s string) string {
	if !strings.Contains(s, " ") && strings.Contains(s, ",") {
		s = strings.ReplaceAll(s, ",", " ")
	}
	if !strings.Contains(s, "  ") && strings.TrimSpace(s) == s {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// hasScope reports whether the space-separated list holds scope, without
// allocating.
func hasScope(list, scope string) bool {
	for list != "" {
		var s string
		s, list, _ = strings.Cut(list, " ")
		if s == scope {
			return true
		}
	}
	return false
}

// joseHeader is what we read of a JWT's header.
type joseHeader struct{ alg, typ string }

func readJOSEHeader(header []byte) (joseHeader, error) {
	var h joseHeader
	bad := false
	err := scanObject(string(header), func(k, val string) {
		switch k {
		case "alg", "typ":
			if len(val) == 0 || val[0] != '"' {
				bad = true
				return
			}
			if k == "alg" {
				h.alg = jsonString(val)
			} else {
				h.typ = jsonString(val)
			}
		}
	})
	if err != nil || bad || h.alg == "" {
		return h, errClaims
	}
	return h, nil
}

// splitJWT returns the decoded header and payload of a token shaped like
// a compact JWS: three base64url segments, of which the first is a JSON
// object. Anything else is an opaque token.
func splitJWT(tok string) (header, payload []byte, ok bool) {
	h, rest, ok1 := strings.Cut(tok, ".")
	p, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(sig, '.') >= 0 || h == "" || p == "" {
		return nil, nil, false
	}
	header, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil || len(header) == 0 || header[0] != '{' {
		return nil, nil, false
	}
	payload, err = base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		payload = nil // a JWT whose payload is garbage: refused as such
	}
	return header, payload, true
}

// checkOpaque introspects an opaque token at each provider that offers
// introspection, until one says it is active.
func (b *bearerAuth) checkOpaque(ctx context.Context, tok string) (*bearerState, time.Time) {
	if len(b.introspectors) == 0 {
		return invalidToken("the access token is not a JWT, and no provider here introspects tokens"), time.Time{}
	}
	ctx, cancel := context.WithTimeout(ctx, bearerTimeout)
	defer cancel()
	var first, down *bearerState
	var firstUntil time.Time
	for _, is := range b.introspectors {
		bs, until := b.introspect(ctx, is, tok)
		switch {
		case bs.ss != nil:
			return bs, until
		case bs.status == http.StatusServiceUnavailable:
			down = bs
		case first == nil:
			first, firstUntil = bs, until
		}
	}
	if down != nil {
		// Perhaps the provider that could not answer issued it.
		return down, time.Time{}
	}
	return first, firstUntil
}

// introspect asks is about an opaque token (RFC 7662), authenticating as
// the client does at the token endpoint, and checks the answer: active,
// iss (when present) the provider's, aud one of ours, exp, nbf, sub
// present, an access token (not a refresh token), and the provider's own
// checks.
func (b *bearerAuth) introspect(ctx context.Context, is *bearerIssuer, tok string) (*bearerState, time.Time) {
	p := is.p
	body, err := is.post(ctx, tok)
	if err != nil {
		b.log.ErrorContext(ctx, "auth: token introspection failed", "provider", p.name, "error", err)
		return providerDown("the provider could not be asked about the access token"), time.Time{}
	}
	now := b.now()
	var until time.Time
	if b.introspectTTL > 0 {
		until = now.Add(b.introspectTTL)
	}
	var c accessClaims
	if c.read(body) != nil {
		b.log.ErrorContext(ctx, "auth: token introspection answered garbage", "provider", p.name)
		return providerDown("the provider could not be asked about the access token"), time.Time{}
	}
	nowSec := float64(now.Unix())
	skew := b.skew.Seconds()
	if c.hasExp && !until.IsZero() {
		until = minTime(until, time.Unix(int64(c.exp+skew), 0))
	}
	iss := is.k.fixedIssuer()
	switch {
	case !c.active:
		return invalidToken("the access token is not active"), until
	case c.iss != "" && iss != "" && c.iss != iss:
		return invalidToken("the access token's issuer is not accepted here"), until
	case c.hasExp && c.exp+skew <= nowSec:
		return invalidToken("the access token expired"), until
	case c.hasNbf && c.nbf > nowSec+skew:
		return invalidToken("the access token is not valid yet"), time.Time{}
	case c.tokenUse != "" && c.tokenUse != "access_token",
		c.tokenType != "" && !strings.EqualFold(c.tokenType, "bearer") && c.tokenType != "access_token",
		c.typ != "" && !strings.EqualFold(c.typ, "bearer"):
		return invalidToken("the token is not an access token"), until
	case !b.forUs(c.aud):
		return invalidToken("the access token is not for this audience"), until
	case c.sub == "":
		return invalidToken("the access token has no subject"), until
	}
	if err := p.quirks.checkIDToken(is.k, body); err != nil {
		b.log.DebugContext(ctx, "auth: bearer token refused by the provider's checks", "provider", p.name, "error", err)
		return invalidToken("the access token is not accepted here"), until
	}
	end := until
	if end.IsZero() {
		end = now.Add(bearerTimeout) // not cached, but the state needs an end
	}
	bs, _ := b.accept(p, tok, body, &c, end)
	return bs, until
}

// post sends tok to the introspection endpoint, as the client
// authenticates at the token endpoint (provider.postForm), and returns the
// answer's body. Errors never hold the token.
func (is *bearerIssuer) post(ctx context.Context, tok string) ([]byte, error) {
	res, err := is.p.postForm(ctx, is.introspection, url.Values{"token": {tok}, "token_type_hint": {"access_token"}})
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxIntrospection+1))
	switch {
	case err != nil:
		return nil, err
	case res.StatusCode != http.StatusOK:
		return nil, &statusError{status: res.StatusCode}
	case len(body) > maxIntrospection:
		return nil, fmt.Errorf("answer over %d bytes", maxIntrospection)
	}
	return body, nil
}

// minTime returns the earlier of a and b; a zero time counts as none.
func minTime(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// refuseBearer answers a request whose bearer token was refused, as RFC
// 6750 §3 asks: the error code and description in WWW-Authenticate and
// in a JSON body. A provider that could not be asked gets 503 and
// Retry-After instead.
func (m *Middleware) refuseBearer(w http.ResponseWriter, bs *bearerState) {
	if bs.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	} else {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+m.origin+`", error="`+bs.code+`", error_description="`+bs.desc+`"`)
	}
	writeJSONError(w, bs.status, bs.code, bs.desc)
}

// RequireScope returns a middleware that lets through requests whose
// access token was granted every one of scopes, and answers the rest:
// anonymous requests as [Middleware.RequireLogin] does (it requires
// login too), and signed-in ones without the scopes with 403 and
// WWW-Authenticate: Bearer error="insufficient_scope", scope="..." (RFC
// 6750 §3.1). Its result fits any router's Use or With:
//
//	mux.Handle("GET /api/groups", a.RequireScope("groups:read")(http.HandlerFunc(groups)))
//
// A bearer token's scopes are its scope claim (a space-separated string,
// RFC 9068) and its scp claim (a string, as Entra ID sends it, or an
// array, as Ory Hydra and Okta do), or the introspection answer's scope.
// A session's scopes are those the provider's token response granted at
// login or at the last refresh, or, when it did not say, the scopes
// requested (Config.Scopes or Provider.Scopes; RFC 6749 §5.1). Note that
// some providers grant scopes under other names than requested (Google
// answers "email" with https://www.googleapis.com/auth/userinfo.email).
//
// It panics if a scope is not a valid scope token (RFC 6749 §3.3: no
// space, quote or backslash).
func (m *Middleware) RequireScope(scopes ...string) func(http.Handler) http.Handler {
	for _, s := range scopes {
		if !validScope(s) {
			panic(fmt.Sprintf("auth: RequireScope: %q is not a valid scope", s))
		}
	}
	need := strings.Join(scopes, " ")
	return func(next http.Handler) http.Handler {
		return m.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			st, _ := r.Context().Value(ctxKey{}).(*reqState)
			for _, s := range scopes {
				if !st.granted(s) {
					m.log.DebugContext(r.Context(), "auth: insufficient scope", "path", r.URL.Path, "need", need)
					w.Header().Set("WWW-Authenticate", `Bearer realm="`+m.origin+`", error="insufficient_scope", error_description="the access token lacks a scope this resource needs", scope="`+need+`"`)
					writeJSONError(w, http.StatusForbidden, "insufficient_scope", "the access token lacks a scope this resource needs")
					return
				}
			}
			next.ServeHTTP(w, r)
		}))
	}
}

// HasScope reports whether the request's access token was granted scope:
// a bearer token's, or the signed-in session's, as [Middleware.RequireScope]
// reads them. It is false for an anonymous request.
func HasScope(ctx context.Context, scope string) bool {
	st, _ := ctx.Value(ctxKey{}).(*reqState)
	return st.granted(scope)
}

// granted reports whether the request's bearer token or session was
// granted scope.
func (st *reqState) granted(scope string) bool {
	if st == nil {
		return false
	}
	ss := st.ss.Load()
	switch {
	case ss == nil:
		return false
	case st.bearer != nil:
		return hasScope(st.bearer.scope, scope)
	case ss.sess.scope != "":
		return hasScope(ss.sess.scope, scope)
	}
	if p := st.m.providers.byName(ss.sess.provider); p != nil {
		return slices.Contains(p.oauth.Scopes, scope)
	}
	return false
}

// validScope reports whether s is a scope token (RFC 6749 §3.3):
// 1*( %x21 / %x23-5B / %x5D-7E ).
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// sameScopes reports whether the space-separated list names exactly the
// scopes of want, in any order.
func sameScopes(list string, want []string) bool {
	n := 0
	for rest := list; rest != ""; {
		var s string
		s, rest, _ = strings.Cut(rest, " ")
		if !slices.Contains(want, s) {
			return false
		}
		n++
	}
	for _, w := range want {
		if !hasScope(list, w) {
			return false
		}
	}
	return n > 0 || len(want) == 0
}
