package auth

// This file counts what the middleware does, for an operator's graphs:
// Config.Metrics receives an Event for each sign-in, logout, refresh,
// ended session, back-channel logout and Store failure, and for each
// request that carries a session. The promauth module turns them into
// Prometheus counters; any other system needs a function of a few lines.

// Event is one thing the middleware did, for [Config.Metrics]. It never
// holds a token, cookie or subject: only what happened, and the name of
// the provider involved ("" for the provider of Config.Issuer, or when
// none is).
type Event struct {
	Kind     EventKind
	Provider string
}

// EventKind says what happened.
type EventKind string

// The kinds of Event.
const (
	// EventSession: a request carried a valid session.
	EventSession EventKind = "session"
	// EventSessionDropped: a request carried a session cookie that is not
	// a live session of ours (tampered, expired, from another deployment,
	// deleted from the Store); the request went on anonymous.
	EventSessionDropped EventKind = "session_dropped"
	// EventLogin: a user signed in.
	EventLogin EventKind = "login"
	// EventLoginFailed: a callback failed (the error page was shown).
	EventLoginFailed EventKind = "login_failed"
	// EventLogout: a user signed out.
	EventLogout EventKind = "logout"
	// EventRefresh: a refresh grant succeeded.
	EventRefresh EventKind = "refresh"
	// EventRefreshReused: a request got a session refreshed just before,
	// from the grace cache or from another instance, without a grant.
	EventRefreshReused EventKind = "refresh_reused"
	// EventRefreshFailed: a refresh failed for now (the provider or the
	// Store was unavailable); the session was kept.
	EventRefreshFailed EventKind = "refresh_failed"
	// EventSessionEnded: the provider rejected a refresh token, so its
	// session ended.
	EventSessionEnded EventKind = "session_ended"
	// EventBackchannelLogout: a back-channel logout token was accepted.
	EventBackchannelLogout EventKind = "backchannel_logout"
	// EventStoreError: the Store could not answer.
	EventStoreError EventKind = "store_error"
	// EventBearer: a request carried a valid bearer token (see
	// Config.BearerAudiences).
	EventBearer EventKind = "bearer"
	// EventBearerRefused: a request carried a bearer token that was
	// refused, or could not be checked; the request went on anonymous.
	EventBearerRefused EventKind = "bearer_refused"
)

// counter reports events to Config.Metrics, when set.
type counter func(Event)

func (c counter) count(kind EventKind, provider string) {
	if c != nil {
		c(Event{Kind: kind, Provider: provider})
	}
}
