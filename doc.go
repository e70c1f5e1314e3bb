// Package auth adds OpenID Connect login to any net/http application.
//
// One call sets it up and one wrapper mounts it:
//
//	a, err := auth.New(ctx, auth.Config{
//		Issuer:       "https://accounts.google.com",
//		ClientID:     os.Getenv("AUTH_CLIENT_ID"),
//		ClientSecret: os.Getenv("AUTH_CLIENT_SECRET"),
//		RedirectURL:  publicURL + "/auth/callback",
//		CookieSecret: secret, // >= 32 bytes, stable across restarts
//	})
//	if err != nil {
//		log.Fatal(err) // bad config or discovery failed: fail at startup
//	}
//	mux.Handle("GET /me", a.RequireLogin(http.HandlerFunc(me)))
//	log.Fatal(http.ListenAndServe(addr, a.Handler(mux)))
//
// Handlers read the user with [User] and call APIs with [Client], whose
// requests carry the access token and refresh it when it expires:
//
//	if u := auth.User(r.Context()); u != nil { ... }
//	res, err := auth.Client(r.Context()).Get(apiURL)
//
// # Routes
//
// [Middleware.Handler] serves these paths and passes every other request
// to the application:
//
//	GET, POST /auth/login[?next=/path]  start a login; next is a same-origin path to return to
//	GET       /auth/callback            the provider's redirect back (the path of Config.RedirectURL);
//	                                    POST with ResponseMode form_post
//	POST, GET /auth/logout              end the session, then the provider's logout if it has one
//	                                    (a GET from another site gets a confirmation form)
//
// With several providers in [Config.Providers], each has its own
// /auth/login/{name} and /auth/callback/{name}. With a server-side [Store],
// [Config.BackchannelLogoutPath] also mounts an OpenID Connect Back-Channel
// Logout endpoint.
//
// # The login
//
// Every login sends a fresh state, nonce and PKCE (S256) challenge, kept in
// a short-lived encrypted flow cookie of its own, so several tabs can log in
// at once. The callback must match a live flow cookie of this browser (it
// is consumed, so a callback cannot be replayed), exchanges the code with
// the PKCE verifier, and verifies the ID token: signature with the
// provider's published keys (an unknown key ID fetches them again, so key
// rotation needs nothing), one of the algorithms the provider advertises
// (never "none"), iss, aud (the client ID and no untrusted audience), azp,
// exp, iat, sub and the nonce of this login. Userinfo claims are added when
// their sub matches. The return path is a same-origin relative path only.
// With [Config].ResponseMode form_post, the provider posts its answer to
// the callback instead (https only): that login's flow cookie is
// SameSite=None so that the cross-site POST carries it, and the callback
// answers with a 303.
//
// The client authenticates at the token and revocation endpoints with its
// secret, or without one: with assertions it signs with [Config].ClientKey
// (private_key_jwt) or with its secret (client_secret_jwt), a fresh one
// for each request. The method is chosen in New, from the provider's
// discovery document, and never changes.
//
// # The session cookie
//
// The session holds the tokens (access, refresh, ID), when they were
// issued and when the session began; the user's claims are read back from
// the ID token, so nothing is stored twice. It is sealed with
// gorilla/securecookie: AES-256-CTR and HMAC-SHA256, with keys derived
// from [Config.CookieSecret] by HKDF. The cookie is HttpOnly, SameSite=Lax,
// Secure when RedirectURL is https, and expires with the session. Over
// https with the default name, path and domain it is named with the
// __Host- prefix, so the browser binds it to this exact origin; flow
// cookies always are, over https, so that no other host (a sibling
// subdomain) can plant a login of its own. A session larger than one
// cookie is split over numbered cookies (name.1, name.2...). A cookie that does
// not decode (tampered, sealed with an unknown secret, expired) makes the
// request anonymous and is deleted. Rotate secrets with
// [Config.PreviousCookieSecrets].
//
// With a [Store] the cookie holds only a random session ID, and the
// session itself lives on the server, where logout and back-channel
// logout end it for good.
//
// # Refresh
//
// A request whose access token has expired, or will within
// [Config.RefreshLeeway], is refreshed before the handler runs, so the new
// cookie goes out with the response. Concurrent requests of one session
// share one refresh, and for [Config.RefreshGrace] requests that still
// carry the old cookie get the new token without another grant, which keeps
// users signed in with providers that rotate refresh tokens. A provider
// that rejects the refresh token ends the session; a provider that is down
// does not (the request goes on with the old token, and retries back off).
//
// # Bearer tokens
//
// With [Config.BearerAudiences], the same routes also accept requests with
// "Authorization: Bearer <access token>" from the providers, as an SPA, a
// mobile app or another service sends them: a JWT access token is verified
// with the provider's keys, an opaque one is introspected (RFC 7662), and
// the request gets the same [User], [Token] and [Client] as a session. A
// refused token is answered as RFC 6750 asks, never with a redirect, and
// [Middleware.RequireScope] checks scopes.
//
// # Cost per request
//
// A request without a session cookie costs a scan of the Cookie header. A
// session cookie seen before is found in a bounded in-memory cache and
// compared in constant time; a new one is authenticated, decrypted and
// decoded once. The ID token's signature is checked when the token is
// received, not on every request. Sessions in a [Store] are not cached (so
// that ending one takes effect at once): each signed-in request reads the
// Store. README.md has the measured numbers.
package auth

// Where things are, for whoever works on this package (godoc does not show
// this comment). Each concern has one file; the question a file answers
// is in its first comment.
//
//	middleware.go   Config; New (defaults, validate, build) and the route table;
//	                Handler, RequireLogin; User, Token, Client; Identity
//	request.go      one request's session: its context value, the writer that sets a
//	                changed cookie before the response, Client's transport
//	session.go      sessions: lookup, save, write, forget; backends (the cookie, or a
//	                Store); the cache of verified sessions
//	cookie.go       what the cookie holds: the session's format, the flow cookie,
//	                sealing, names and attributes, chunks, the Cookie-header scanner
//	store.go        Store and its optional interfaces; the Store backend
//	memstore.go     MemoryStore: sessions in this process's memory
//	refresh.go      how refresh works: when, once, grace, failures, the refresh lock
//	flow.go         login, callback, logout
//	formpost.go     the form_post response mode: its flow cookie, the POST callback
//	provider.go     Provider; the provider it becomes; kinds and quirks; code exchange,
//	                refresh grant, revocation, end-session URL
//	oidc.go         the OpenID Connect kind: discovery, ID token checks, userinfo
//	oauth2.go       the plain OAuth 2.0 kind: the user API
//	clientauth.go   how the client authenticates: secrets, client assertions
//	                (private_key_jwt, client_secret_jwt), minted secrets; authenticate
//	keys.go         a provider's signing keys: shared, budgeted fetches
//	claims.go       the Identity read from claims, and the claims scanner
//	backchannel.go  EndSessions and back-channel logout
//	bearer.go       bearer access tokens (RFC 6750): which are accepted, their checks,
//	                cache and answers; RequireScope, HasScope
//	errors.go       errors, and how each is answered
//	pages.go        the pages a person sees (error, logout question, chooser): Page
//	metrics.go      what Config.Metrics counts: Event
//	cache.go        the one bounded in-memory cache
//	google.go, microsoft.go, github.go, apple.go   presets and their quirks
