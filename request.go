package auth

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// This file holds the per-request state behind User, Token and Client: the
// value Handler attaches to a request that carries a session cookie. It is
// also the request's context (answering Value(ctxKey{}) itself, which
// saves the allocation of a context.WithValue), and the ResponseWriter the
// handler gets, so that a session cookie changed during the request (a
// token refreshed by Client, or a session that ended) is set before the
// first byte of the response, through sessions.write, once.

type ctxKey struct{}

// reqState is one request's session.
type reqState struct {
	http.ResponseWriter
	context.Context
	m  *Middleware
	r  *http.Request
	ss atomic.Pointer[sessionState] // nil: anonymous
	// bearer is what the request's bearer token turned out to be
	// (bearer.go); nil for a request without one. When it was verified,
	// ss is its session.
	bearer *bearerState

	mu      sync.Mutex
	written bool
	dirty   bool // the cookie must change: to pending, or deleted if pending is nil
	// unavailable: the Store could not answer, so the request is neither
	// signed in nor anonymous. (Beside the other flags, where it takes
	// no word of its own: the state stays in a 96-byte allocation.)
	unavailable bool
	pending     *sessionState // session whose cookie is still to be set
	client      *http.Client
}

// Value implements context.Context.
func (st *reqState) Value(key any) any {
	if key == (ctxKey{}) {
		return st
	}
	return st.Context.Value(key)
}

// String implements fmt.Stringer, as the standard library's contexts do.
func (st *reqState) String() string { return "auth.requestContext" }

// refresh refreshes the request's session: before the handler when it is
// due, or from Client's transport. A refreshed session's cookie is set at
// commit; a session that ended is forgotten, and its cookie deleted at
// commit.
func (st *reqState) refresh(ctx context.Context) (*sessionState, error) {
	ss := st.ss.Load()
	if ss == nil {
		return nil, ErrNoSession
	}
	ns, err := st.m.refresher.refresh(ctx, ss)
	switch {
	case errors.Is(err, ErrSessionEnded):
		_ = st.m.sessions.forget(ctx, ss) // a failed delete is retried by the next request
		st.ss.Store(nil)
		st.setCookie(nil)
		return nil, err
	case err == nil && ns != ss:
		st.ss.Store(ns)
		st.setCookie(ns)
	}
	return ns, err
}

// setCookie records the session whose cookie the response must set (nil:
// delete the session cookie).
func (st *reqState) setCookie(ss *sessionState) {
	st.mu.Lock()
	st.dirty, st.pending = true, ss
	st.mu.Unlock()
}

// commit writes the pending cookie change into the headers, once, before
// the first byte of the response.
func (st *reqState) commit() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.written {
		return
	}
	st.written = true
	if st.dirty {
		if err := st.m.sessions.write(st.ResponseWriter, st.r, st.pending); err != nil {
			st.m.log.ErrorContext(st.r.Context(), "auth: write session cookie", "error", err)
		}
	}
}

// WriteHeader implements http.ResponseWriter.
func (st *reqState) WriteHeader(code int) {
	st.commit()
	st.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (st *reqState) Write(p []byte) (int, error) {
	st.commit()
	return st.ResponseWriter.Write(p)
}

// ReadFrom keeps io.Copy to the response as fast as without us.
func (st *reqState) ReadFrom(src io.Reader) (int64, error) {
	st.commit()
	return io.Copy(st.ResponseWriter, src)
}

// Flush implements http.Flusher.
func (st *reqState) Flush() {
	st.commit()
	_ = http.NewResponseController(st.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker when the underlying writer does.
func (st *reqState) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	st.commit()
	return http.NewResponseController(st.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (st *reqState) Unwrap() http.ResponseWriter { return st.ResponseWriter }

var _ interface {
	http.Flusher
	http.Hijacker
	io.ReaderFrom
} = (*reqState)(nil)

// httpClient returns the request's auto-refreshing client.
func (st *reqState) httpClient() *http.Client {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.client == nil {
		base := st.m.client.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		st.client = &http.Client{
			Transport:     &bearerTransport{st: st, base: base},
			Timeout:       st.m.client.Timeout,
			CheckRedirect: st.m.checkRedirect,
		}
	}
	return st.client
}

// checkRedirect stops Client at a redirect to another origin: the
// transport adds the token to every request it sends, so following would
// hand the user's token to whatever host the redirect names. The redirect
// response is returned to the caller instead.
func (m *Middleware) checkRedirect(req *http.Request, via []*http.Request) error {
	if first := via[0].URL; req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return http.ErrUseLastResponse
	}
	if m.client.CheckRedirect != nil {
		return m.client.CheckRedirect(req, via)
	}
	if len(via) >= 10 {
		return errors.New("auth: stopped after 10 redirects")
	}
	return nil
}

// bearerTransport sends the session's access token, refreshing it first
// when it is due.
type bearerTransport struct {
	st   *reqState
	base http.RoundTripper
}

func (t *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	st := t.st
	ss := st.ss.Load()
	var err error
	if ss != nil && st.m.refresher.due(ss.sess, st.m.now()) {
		var ns *sessionState
		if ns, err = st.refresh(r.Context()); ns != nil {
			ss = ns
		} else if errors.Is(err, ErrSessionEnded) {
			ss = nil
		}
	}
	if ss == nil {
		if r.Body != nil {
			r.Body.Close()
		}
		if err == nil {
			err = ErrNoSession
		}
		return nil, err
	}
	r2 := r.Clone(r.Context())
	ss.oauthToken().SetAuthHeader(r2)
	return t.base.RoundTrip(r2)
}
