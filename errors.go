package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
)

// This file holds every error a caller can branch on, the one table that
// says how each is answered (status and the sentence a person sees), and
// the writers of error responses and of the headers every page we serve
// carries.

// Errors callers can branch on with errors.Is.
var (
	// ErrNoSession: the request has no signed-in user.
	ErrNoSession = errors.New("auth: no session")
	// ErrInvalidRequest: a login, callback or logout request is malformed.
	ErrInvalidRequest = errors.New("auth: invalid request")
	// ErrLoginState: the callback matches no login started in this browser
	// (unknown or expired state, or the flow cookie is missing).
	ErrLoginState = errors.New("auth: unknown or expired login")
	// ErrTokenInvalid: a token from the provider failed verification.
	ErrTokenInvalid = errors.New("auth: token failed verification")
	// ErrLoginRefused: Config.OnLogin refused the user, or a provider's
	// restriction did (Google's hosted domain, Microsoft's tenants).
	ErrLoginRefused = errors.New("auth: login refused")
	// ErrProviderUnavailable: the provider could not be reached or answered
	// with an error or garbage.
	ErrProviderUnavailable = errors.New("auth: provider unavailable")
	// ErrSessionEnded: the provider rejected the refresh token (revoked,
	// expired or reused), so the session was ended.
	ErrSessionEnded = errors.New("auth: session ended by provider")
	// ErrStoreUnavailable wraps errors from a [Store] that could not
	// answer.
	ErrStoreUnavailable = errors.New("auth: session store unavailable")
)

// ProviderError is an error response from the provider: the "error",
// "error_description" and "error_uri" parameters of RFC 6749.
type ProviderError struct {
	Code, Description, URI string
}

// Error returns the provider's error code; the description, which the
// provider (or whoever sent the browser back) chose, is left out.
func (e *ProviderError) Error() string {
	return "auth: provider returned error " + e.Code
}

// Errors of our own routes, answered with their own sentences.
var (
	// errMethod: a method that the route does not serve.
	errMethod = errors.New("auth: method not allowed")
	// errNotCallback: the callback path requested with none of the
	// parameters of a provider's answer.
	errNotCallback = errors.New("auth: not an authorization response")
)

// answers is how each error is answered: the first entry that err wraps
// gives the status and the sentence shown (never the error's own text).
var answers = []struct {
	err     error
	status  int
	message string
}{
	{errMethod, http.StatusMethodNotAllowed, "This address does not accept that kind of request."},
	{errNotCallback, http.StatusBadRequest, "This address is where you come back after signing in. Please start from the sign-in page."},
	{ErrInvalidRequest, http.StatusBadRequest, "The sign-in request was malformed."},
	{ErrLoginState, http.StatusBadRequest, "This sign-in link has expired or was already used. Please sign in again."},
	{ErrTokenInvalid, http.StatusUnauthorized, "The sign-in could not be verified."},
	{ErrNoSession, http.StatusUnauthorized, "Sign-in failed."},
	{ErrSessionEnded, http.StatusUnauthorized, "Sign-in failed."},
	{ErrLoginRefused, http.StatusForbidden, "This account is not allowed to sign in."},
	{ErrProviderUnavailable, http.StatusBadGateway, "The sign-in provider is unavailable. Please try again later."},
	{ErrStoreUnavailable, http.StatusServiceUnavailable, "Sessions are temporarily unavailable. Please try again shortly."},
}

// answer returns the status and public sentence for err.
func answer(err error) (int, string) {
	var pe *ProviderError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "access_denied":
			return http.StatusForbidden, "Sign-in was cancelled or denied."
		case "invalid_client", "unauthorized_client", "unsupported_grant_type", "unsupported_response_type",
			"server_error", "temporarily_unavailable":
			// The provider refuses this client or is failing: a
			// configuration error or an outage the user cannot fix.
			return http.StatusBadGateway, "The sign-in provider reported an error."
		}
		return http.StatusBadRequest, "The sign-in provider reported an error."
	}
	for _, a := range answers {
		if errors.Is(err, a.err) {
			return a.status, a.message
		}
	}
	return http.StatusInternalServerError, "Sign-in failed."
}

// ErrorStatus returns the HTTP status that suits err: 400 for malformed
// requests, unknown logins and the provider's complaints about the request
// (a [ProviderError] such as invalid_grant for a used code), 401 for tokens
// that failed verification and for ErrNoSession and ErrSessionEnded, 403
// for refused logins and denied consent (access_denied), 502 for provider
// failures, including a provider refusing this client (invalid_client,
// unauthorized_client: a configuration error the user cannot fix), 503
// when the session Store is unreachable and 500 for anything else.
func ErrorStatus(err error) int {
	status, _ := answer(err)
	return status
}

// defaultError writes the public sentence for err: JSON for API callers,
// the error page for a person.
func (m *Middleware) defaultError(w http.ResponseWriter, r *http.Request, err error) {
	if !isNavigation(r) && strings.Contains(r.Header.Get("Accept"), "json") {
		status, msg := answer(err)
		writeJSONError(w, status, strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_"), msg)
		return
	}
	m.page(w, r, m.errorPage(r, err))
}

// writeJSONError writes an error in RFC 6749 §5.2's shape, with a fixed
// description: never an error's own text.
func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	pageHeaders(w.Header(), "application/json", "")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, msg})
}

// pageHeaders sets the headers of every response the middleware writes
// itself: its content type, never cached, never sniffed, and, for HTML,
// a Content-Security-Policy that forbids framing.
func pageHeaders(h http.Header, contentType, csp string) {
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if csp != "" {
		h.Set("Content-Security-Policy", csp)
	}
}

// fail logs err and hands it to the error handler.
func (m *Middleware) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	level := slog.LevelWarn
	if ErrorStatus(err) >= 500 {
		level = slog.LevelError
	}
	m.log.LogAttrs(r.Context(), level, "auth: "+op+" failed", slog.String("path", r.URL.Path), slog.Any("error", err))
	m.errorHandler(w, r, err)
}

// tokenError turns a token endpoint failure into our errors: an OAuth error
// response becomes a *ProviderError (checkable with errors.As, as is the
// original *oauth2.RetrieveError), anything else ErrProviderUnavailable. An
// error code in a 2xx response counts too: GitHub sends its errors with 200
// OK. code maps the provider's error codes to RFC 6749's. The message never
// includes the response body.
func tokenError(op string, err error, code func(string) string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if class := status / 100; re.ErrorCode != "" && (class == 4 || class == 2) {
			return &retrieveError{op: op, status: status, pe: &ProviderError{Code: code(re.ErrorCode)}, re: re}
		}
		return &retrieveError{op: op, status: status, re: re}
	}
	return fmt.Errorf("auth: %s: %w: %w", op, ErrProviderUnavailable, err)
}

// retrieveError is a token endpoint error whose message leaves out the
// response body, which may hold anything.
type retrieveError struct {
	op     string
	status int
	pe     *ProviderError // nil when the provider sent no OAuth error code
	re     *oauth2.RetrieveError
}

func (e *retrieveError) Error() string {
	if e.pe != nil {
		return fmt.Sprintf("auth: %s: token endpoint answered %d %s", e.op, e.status, e.pe.Code)
	}
	return fmt.Sprintf("auth: %s: token endpoint answered %d", e.op, e.status)
}

func (e *retrieveError) Unwrap() []error {
	if e.pe != nil {
		return []error{e.pe, e.re}
	}
	return []error{ErrProviderUnavailable, e.re}
}

// statusError is an API's answer with an unexpected status.
type statusError struct{ status int }

func (e *statusError) Error() string {
	return fmt.Sprintf("auth: provider answered %d %s", e.status, http.StatusText(e.status))
}

func (e *statusError) Unwrap() error { return ErrProviderUnavailable }

// checkStatus closes the body of a response whose body is not needed and
// returns err, or a statusError if res's status is not want.
func checkStatus(res *http.Response, err error, want int) error {
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != want {
		return &statusError{status: res.StatusCode}
	}
	return nil
}
