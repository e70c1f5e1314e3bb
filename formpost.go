package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// This file is the form_post response mode (OAuth 2.0 Form Post Response
// Mode): the provider answers the login with an HTML form that the
// browser posts to the callback, instead of a redirect with the answer in
// the query. What changes: the login asks for it (response_mode), its flow
// cookie is SameSite=None so that the provider's cross-site POST carries
// it, the callback reads the answer from a size-limited POST body and
// answers with a 303 so that a reload never posts again, and a preset may
// read claims the provider sends along (Apple's user). What does not: the
// state must still match this browser's flow cookie, which is still a
// __Host- cookie over https, so no other host can plant one, and is still
// consumed by the callback. That binding of the answer's state to this
// browser's login is the defence against a forged POST (RFC 6749 10.12);
// the POST's Origin is not checked, as it is the provider's page's, or
// "null" when that page sends no referrer, and a provider may answer from
// another host than its authorization endpoint's.

const (
	responseQuery    = "query"
	responseFormPost = "form_post"
)

// maxFormPost bounds the body of a form_post callback: a code, a state, an
// error, and at most an ID token and Apple's user.
const maxFormPost = 64 << 10

// responseMode checks a provider's ResponseMode (w names its settings) and
// reports whether it is form_post, which needs an https redirect URL.
func responseMode(mode, w, redirectURL string) (formPost bool, err error) {
	switch mode {
	case "", responseQuery:
		return false, nil
	case responseFormPost:
		if !strings.HasPrefix(redirectURL, "https://") {
			return false, fmt.Errorf("auth: %s.ResponseMode form_post needs an https RedirectURL, got %q: the provider's POST to the callback comes from another site, and only a SameSite=None cookie, which browsers accept only with Secure, goes with it", w, redirectURL)
		}
		return true, nil
	}
	return false, fmt.Errorf("auth: %s.ResponseMode %q is neither query nor form_post", w, mode)
}

// checkResponseMode checks that the provider supports form_post when p
// uses it, if its discovery document lists response modes (OpenID Connect
// Discovery 1.0 section 3: the default is query and fragment, but many
// providers that support form_post do not list it).
func checkResponseMode(p *provider, modes []string) error {
	if p.formPost && len(modes) > 0 && !slices.Contains(modes, responseFormPost) {
		return fmt.Errorf("the provider does not support response_mode form_post (its response_modes_supported lists %v)", modes)
	}
	return nil
}

// responseOptions returns the authorization request's response_mode for
// p, and marks the login's flow cookie for the cross-site POST.
func (p *provider) responseOptions(f *flowState) []oauth2.AuthCodeOption {
	if !p.formPost {
		return nil
	}
	f.CrossSite = true
	return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("response_mode", responseFormPost)}
}

// callbackMethods are the methods p's callback accepts: GET, and POST for
// form_post (and for the path of no provider, where every login fails
// alike).
func callbackMethods(p *provider) []string {
	if p == nil || p.formPost {
		return []string{http.MethodGet, http.MethodPost}
	}
	return []string{http.MethodGet}
}

// callbackParams returns the provider's answer: for a POST its body, a
// form of at most maxFormPost bytes (the query is ignored), and for a GET
// the query.
func callbackParams(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.Method != http.MethodPost {
		return r.URL.Query(), nil
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		return nil, fmt.Errorf("%w: a POST callback must be a form, not %q", ErrInvalidRequest, ct)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormPost)
	if err := r.ParseForm(); err != nil {
		return nil, fmt.Errorf("%w: callback form: %w", ErrInvalidRequest, err)
	}
	return r.PostForm, nil
}

// afterCallback is the status that sends the browser on after the
// callback: 303 after a POST, so that going back or reloading never
// posts the answer again (RFC 9110 15.4.4).
func afterCallback(r *http.Request) int {
	if r.Method == http.MethodPost {
		return http.StatusSeeOther
	}
	return http.StatusFound
}

// addResponseClaims adds to s the claims the provider sent with its
// authorization response rather than in the ID token (a preset's
// quirks.responseClaims, such as Apple's user), as claims the ID token
// lacks: those the ID token (or userinfo) has are left as they are.
func (s *session) addResponseClaims(p *provider, q url.Values) error {
	add, err := p.quirks.responseClaims(q)
	if err != nil || len(add) == 0 {
		return err
	}
	var have map[string]json.RawMessage
	if len(s.extra) > 0 {
		if err := json.Unmarshal(s.extra, &have); err != nil {
			return fmt.Errorf("auth: extra claims: %w", err)
		}
	}
	if have == nil {
		have = map[string]json.RawMessage{}
	}
	taken := map[string]bool{}
	for k := range have {
		taken[foldName(k)] = true
	}
	if parts := strings.Split(s.idToken, "."); len(parts) == 3 {
		if payload, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			_ = scanObject(string(payload), func(k, _ string) { taken[foldName(jsonString(`"`+k+`"`))] = true })
		}
	}
	for k, v := range add {
		if taken[foldName(k)] {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("auth: response claims: %w", err)
		}
		have[k] = b
	}
	if len(have) == 0 {
		return nil
	}
	b, err := json.Marshal(have)
	if err != nil {
		return errors.New("auth: encode claims")
	}
	s.extra = b
	return nil
}
