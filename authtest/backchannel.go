package authtest

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// backchannelEvent is the member of a logout token's events claim that
// makes it one (OpenID Connect Back-Channel Logout 1.0 §2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// SetBackchannelLogoutURI sets the client's registered
// backchannel_logout_uri, where [Provider.BackchannelLogout] posts logout
// tokens; "" removes it.
func (p *Provider) SetBackchannelLogoutURI(uri string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backchannel = uri
}

// LogoutToken returns a logout token (OpenID Connect Back-Channel Logout
// 1.0 §2.4) signed with the current key, with the header typ
// "logout+jwt". Its claims are iss, aud (the client), iat (now by the
// provider's clock), exp (two minutes later), a random jti and the
// back-channel logout event, and then the entries of claims: sub and sid
// go there, and an entry may also replace one of the claims above or,
// with a nil value, remove it. So a test can mint a valid token, or one
// broken in any way it likes:
//
//	p.LogoutToken(map[string]any{"sub": "alice"})                // valid
//	p.LogoutToken(map[string]any{"sub": "alice", "nonce": "n"})  // a nonce: rejected
//	p.LogoutToken(map[string]any{"sub": "alice", "events": nil}) // not a logout token
//
// It panics if the claims cannot be encoded as JSON.
func (p *Provider) LogoutToken(claims map[string]any) string {
	p.mu.Lock()
	now := p.now()
	key := p.signingKey()
	p.mu.Unlock()
	c := map[string]any{
		"iss":    p.URL,
		"aud":    p.ClientID,
		"iat":    now.Unix(),
		"exp":    now.Add(2 * time.Minute).Unix(),
		"jti":    rand.Text(),
		"events": map[string]any{backchannelEvent: map[string]any{}},
	}
	setClaims(c, claims)
	return key.mustSignClaims("LogoutToken", c, "logout+jwt")
}

// BackchannelLogout tells the client that the user sub has signed out at
// the provider, as OpenID Connect Back-Channel Logout 1.0 does: for each
// of the user's provider sessions through which the client got tokens,
// it POSTs a logout token (see [Provider.LogoutToken]) with sub and that
// session's sid to the backchannel_logout_uri; if there is none, it sends
// one token with sub only. The provider itself changes nothing: its
// sessions and tokens stay (see [Provider.RevokeUser]).
//
// It returns an error if no backchannel_logout_uri is set, or if the
// client answered any token with something other than 200 (or 204, which
// the specification tolerates); the error then gives the status and the
// client's error code.
func (p *Provider) BackchannelLogout(sub string) error {
	p.mu.Lock()
	uri := p.backchannel
	var sids []string
	for _, t := range p.tokens {
		if t.g.sub == sub && t.g.clientID == p.ClientID && t.g.sid != "" && !slices.Contains(sids, t.g.sid) {
			sids = append(sids, t.g.sid)
		}
	}
	p.mu.Unlock()
	if uri == "" {
		return errors.New("authtest: no backchannel_logout_uri is set; see Provider.SetBackchannelLogoutURI")
	}
	if len(sids) == 0 {
		return p.postLogoutToken(uri, p.LogoutToken(map[string]any{"sub": sub}))
	}
	slices.Sort(sids)
	var errs []error
	for _, sid := range sids {
		errs = append(errs, p.postLogoutToken(uri, p.LogoutToken(map[string]any{"sub": sub, "sid": sid})))
	}
	return errors.Join(errs...)
}

// postLogoutToken sends one logout token to the client (Back-Channel
// Logout 1.0 §2.5): a form POST whose answer must be 200, or 204. A
// redirect is a failure too.
func (p *Provider) postLogoutToken(uri, token string) error {
	c := &http.Client{
		Transport:     p.transport,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := c.PostForm(uri, url.Values{"logout_token": {token}})
	if err != nil {
		return fmt.Errorf("authtest: back-channel logout: %w", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusNoContent {
		return nil
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &e)
	if e.Error == "" {
		return fmt.Errorf("authtest: back-channel logout: %s answered %d", uri, res.StatusCode)
	}
	return fmt.Errorf("authtest: back-channel logout: %s answered %d %s (%s)", uri, res.StatusCode, e.Error, e.Description)
}
