package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// This file ends sessions on the server's initiative: a user's every
// session ("log out everywhere", [Middleware.EndSessions]), and the
// sessions a provider names in an OpenID Connect Back-Channel Logout 1.0
// logout token, received at Config.BackchannelLogoutPath. Both need a
// [Store] that can find sessions by user or by provider session.

// EndSessions ends every session of the user sub signed in by provider
// (its [Provider.Name]; "" for the provider of Config.Issuer), on every
// instance sharing the Store: "log out everywhere". Their cookies no
// longer work from the next request on (which finds the ID unknown, is
// anonymous and clears the cookie); a request in progress keeps its user.
// It returns how many sessions it ended.
//
// It needs a Config.Store that implements [SubjectDeleter]; with any other
// Store, or with sessions in cookies, it returns an error wrapping
// [errors.ErrUnsupported]. A Store failure wraps [ErrStoreUnavailable].
func (m *Middleware) EndSessions(ctx context.Context, provider, sub string) (int, error) {
	d := m.subjects
	if d == nil {
		return 0, fmt.Errorf("auth: EndSessions needs a Config.Store that implements SubjectDeleter: %w", errors.ErrUnsupported)
	}
	if sub == "" {
		return 0, errors.New("auth: EndSessions: empty sub")
	}
	n, err := d.DeleteSubject(ctx, provider, sub)
	if err != nil {
		return n, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	m.log.InfoContext(ctx, "auth: ended every session of a user", slog.Group("session", slog.String("sub", sub), slog.String("provider", provider)), "count", n)
	return n, nil
}

// backchannel is the back-channel logout endpoint.
type backchannel struct {
	bySID     SIDDeleter
	bySub     SubjectDeleter
	replay    ReplayGuard
	providers providers
	log       *slog.Logger
	metrics   counter
}

const (
	// backchannelEvent is the member of a logout token's events claim
	// that makes it one (Back-Channel Logout 1.0 §2.4).
	backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"
	// logoutTokenMaxAge bounds how old (by iat) a logout token may be,
	// whatever its exp says, and so how long its jti is remembered.
	logoutTokenMaxAge = 10 * time.Minute
	// maxLogoutRequest bounds the body of a back-channel logout request.
	maxLogoutRequest = 64 << 10
)

// newBackchannel checks that Config.BackchannelLogoutPath can be served:
// it needs a Store that can end sessions by sid and by subject, and an
// OpenID Connect provider with a fixed issuer.
func newBackchannel(store Store, ps providers, e *env) (*backchannel, error) {
	if store == nil {
		return nil, errors.New("auth: Config.BackchannelLogoutPath needs a Config.Store (such as redisstore or MemoryStore): sessions kept in cookies cannot be ended from the server")
	}
	bySID, ok1 := store.(SIDDeleter)
	bySub, ok2 := store.(SubjectDeleter)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("auth: Config.BackchannelLogoutPath needs a Config.Store that implements SIDDeleter and SubjectDeleter; %T does not", store)
	}
	if !slices.ContainsFunc(ps, func(p *provider) bool { k, ok := p.kind.(*oidcKind); return ok && k.fixedIssuer() != "" }) {
		return nil, errors.New("auth: Config.BackchannelLogoutPath needs an OpenID Connect provider with a fixed issuer; none is configured")
	}
	replay, ok := store.(ReplayGuard)
	if !ok {
		replay = newMemoryReplayGuard(e.now)
	}
	return &backchannel{bySID: bySID, bySub: bySub, replay: replay, providers: ps, log: e.log, metrics: e.metrics}, nil
}

// backchannelLogout serves OpenID Connect Back-Channel Logout 1.0 §2.5:
// the provider POSTs a logout_token; a valid one ends the sessions of its
// sid, or without a sid those of its sub, and gets 200. Anything else gets
// 400 with a JSON error (§2.8), and nothing is ended.
func (b *backchannel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLogoutRequest)
	if err := r.ParseForm(); err != nil {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "malformed request")
		return
	}
	raw := r.PostForm["logout_token"]
	if len(raw) != 1 || raw[0] == "" {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "exactly one logout_token is required")
		return
	}
	ctx := r.Context()
	p, lt, err := b.verifyLogoutToken(ctx, raw[0])
	if err != nil {
		b.log.WarnContext(ctx, "auth: back-channel logout token rejected", "error", err)
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "invalid logout token")
		return
	}

	// The jti is remembered while the token could still be accepted: until
	// exp or iat + logoutTokenMaxAge, whichever is first, plus the skew.
	key := logoutTokenKey(p, lt)
	until := lt.Expiry
	if t := lt.IssuedAt.Add(logoutTokenMaxAge); t.Before(until) {
		until = t
	}
	until = until.Add(p.skew)
	first, err := b.replay.ClaimTokenID(ctx, key, until)
	switch {
	case err != nil:
		b.log.ErrorContext(ctx, "auth: back-channel logout: session store failed", "error", err)
		writeJSONError(w, http.StatusBadRequest, "temporarily_unavailable", "the session store is unavailable")
		return
	case !first:
		b.log.WarnContext(ctx, "auth: back-channel logout token replayed", "provider", p.name)
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "logout token already used")
		return
	}

	var n int
	if lt.SessionID != "" {
		// §2.6: with a sid, only the sessions of that provider session.
		n, err = b.bySID.DeleteSID(ctx, p.name, lt.SessionID)
	} else {
		n, err = b.bySub.DeleteSubject(ctx, p.name, lt.Subject)
	}
	if err != nil {
		// The provider may send the token again: let it through then.
		if rerr := b.replay.ReleaseTokenID(context.WithoutCancel(ctx), key); rerr != nil {
			b.log.ErrorContext(ctx, "auth: back-channel logout: release token ID", "error", rerr)
		}
		b.log.ErrorContext(ctx, "auth: back-channel logout: session store failed", "error", err)
		writeJSONError(w, http.StatusBadRequest, "temporarily_unavailable", "the session store is unavailable")
		return
	}
	b.metrics.count(EventBackchannelLogout, p.name)
	b.log.InfoContext(ctx, "auth: back-channel logout", slog.Group("session", slog.String("sub", lt.Subject), slog.String("provider", p.name)),
		"by_sid", lt.SessionID != "", "count", n)
	w.WriteHeader(http.StatusOK)
}

// verifyLogoutToken checks a logout token as Back-Channel Logout 1.0 §2.6
// asks and returns it with the provider that issued it: the provider is
// the one whose issuer the token names (providers whose issuer depends on
// the user are never candidates). Anyone can post to the endpoint, so the
// claims are checked first, on the token's unverified payload, and only a
// token whose claims pass can make us verify its signature (and, for a key
// we do not hold, fetch the provider's keys, from a budget of its own):
// aud contains the client ID and nothing untrusted, azp (if any) is the
// client ID, exp is not past, iat is present, not in the future and at most
// logoutTokenMaxAge old, the back-channel logout event is a JSON object,
// jti and sub or sid are present, and there is no nonce (so an ID token
// cannot pass for a logout token). Then go-oidc checks the verified token
// again. The jti's first use is checked by the caller.
func (b *backchannel) verifyLogoutToken(ctx context.Context, raw string) (*provider, *oidc.LogoutToken, error) {
	_, payload, ok := splitJWT(raw) // unverified: only to check the claims first
	if !ok || payload == nil {
		return nil, nil, fmt.Errorf("%w: not a compact JWT", ErrTokenInvalid)
	}
	var c logoutClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, nil, fmt.Errorf("%w: claims: %w", ErrTokenInvalid, err)
	}
	if err := checkClaimNames(payload); err != nil {
		return nil, nil, err
	}
	var firstErr error
	for _, p := range b.providers {
		k, ok := p.kind.(*oidcKind)
		if !ok || k.fixedIssuer() != c.Iss {
			continue
		}
		lt, err := checkLogoutToken(ctx, p, k, raw, &c)
		if err == nil {
			return p, lt, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("%w: issuer %q is not a configured provider", ErrTokenInvalid, c.Iss)
	}
	return nil, nil, firstErr
}

// logoutClaims are the claims of a logout token that are checked before
// its signature.
type logoutClaims struct {
	Iss    string                     `json:"iss"`
	Aud    oidcAudience               `json:"aud"`
	Azp    string                     `json:"azp"`
	Exp    *float64                   `json:"exp"`
	Iat    *float64                   `json:"iat"`
	Nbf    *float64                   `json:"nbf"`
	Jti    string                     `json:"jti"`
	Sub    string                     `json:"sub"`
	Sid    string                     `json:"sid"`
	Nonce  *json.RawMessage           `json:"nonce"`
	Events map[string]json.RawMessage `json:"events"`
}

func checkLogoutToken(ctx context.Context, p *provider, k *oidcKind, raw string, c *logoutClaims) (*oidc.LogoutToken, error) {
	now := p.now()
	switch {
	case !slices.Contains(c.Aud, p.clientID):
		return nil, fmt.Errorf("%w: audience is not the client ID", ErrTokenInvalid)
	case c.Exp == nil || *c.Exp < float64(now.Add(-p.skew).Unix()):
		return nil, fmt.Errorf("%w: expired or no exp", ErrTokenInvalid)
	case c.Iat == nil:
		return nil, fmt.Errorf("%w: no iat claim", ErrTokenInvalid)
	case *c.Iat < float64(now.Add(-logoutTokenMaxAge-p.skew).Unix()):
		return nil, fmt.Errorf("%w: issued too long ago (iat %.0f)", ErrTokenInvalid, *c.Iat)
	case c.Jti == "":
		return nil, fmt.Errorf("%w: no jti claim", ErrTokenInvalid)
	case c.Sub == "" && c.Sid == "":
		return nil, fmt.Errorf("%w: neither sub nor sid", ErrTokenInvalid)
	case c.Nonce != nil:
		return nil, fmt.Errorf("%w: a logout token has no nonce", ErrTokenInvalid)
	case !bytes.HasPrefix(bytes.TrimSpace(c.Events[backchannelEvent]), []byte("{")):
		return nil, fmt.Errorf("%w: the back-channel logout event is not a JSON object", ErrTokenInvalid)
	}
	if err := p.checkIssuedFor(time.Unix(int64(*c.Iat), 0), c.Nbf, c.Aud, c.Azp); err != nil {
		return nil, err
	}
	// The claims can be right: now the signature, with keys fetched (if
	// need be) from the budget of tokens anyone can send.
	v, _, err := k.verifyJWT(ctx, raw, k.keys.public)
	if err != nil {
		return nil, err
	}
	lt, err := v.VerifyLogout(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	return lt, nil
}

// logoutTokenKey names a logout token for the replay guard: a hash of its
// provider, issuer and jti (jti is unique per issuer), fixed in length
// whatever the token holds.
func logoutTokenKey(p *provider, lt *oidc.LogoutToken) string {
	h := sha256.New()
	for _, s := range []string{p.name, lt.Issuer, lt.TokenID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:20])
}

// memoryReplayGuard is the ReplayGuard of a process whose Store has none:
// the keys it has seen, each until its expiry, bounded.
type memoryReplayGuard struct {
	seen *boundedCache[string, struct{}]
	now  func() time.Time
}

func newMemoryReplayGuard(now func() time.Time) *memoryReplayGuard {
	return &memoryReplayGuard{seen: newBoundedCache[string, struct{}](10000, 1<<20), now: now}
}

func (g *memoryReplayGuard) ClaimTokenID(_ context.Context, key string, expiry time.Time) (bool, error) {
	return g.seen.add(key, struct{}{}, len(key)+64, expiry, g.now()), nil
}

func (g *memoryReplayGuard) ReleaseTokenID(_ context.Context, key string) error {
	g.seen.delete(key)
	return nil
}
