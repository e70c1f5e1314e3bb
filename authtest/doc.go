// Package authtest runs a small OpenID Connect provider in-process on a
// loopback address, for tests and demos. It is shaped like
// [net/http/httptest.Server]: start it, point the code under test at URL,
// and Close it.
//
//	p := authtest.NewProvider(authtest.Config{
//		RedirectURIs: []string{app.URL + "/auth/callback"},
//	})
//	defer p.Close()
//	browser := p.Login(t, app.URL+"/auth/login", "alice") // holds the app's session cookie
//	res, err := browser.Get(app.URL + "/me")
//
// The provider follows OpenID Connect Core 1.0 (authorization code flow),
// Discovery 1.0, RP-Initiated Logout 1.0 and Back-Channel Logout 1.0
// (sending logout tokens), OAuth 2.0 Form Post Response Mode, and RFC
// 6749, RFC 7636 (PKCE, S256 only), RFC 7009 (revocation), RFC 7523
// (client_secret_jwt and private_key_jwt client assertions, with replayed
// jti refused), RFC 7662 (introspection) and RFC 9207 (iss in the
// authorization response). It knows one client, set in [Config], and a
// few users, by default alice and bob ([Users]). Codes and tokens are
// random opaque strings; ID tokens are JWTs signed with RS256 or ES256
// by [github.com/go-jose/go-jose/v4]. ID tokens and userinfo responses
// carry the user claims that the scope asks for (see [User]).
// [Provider.AccessToken] mints access tokens for an API, JWTs of RFC
// 9068's profile or opaque ones that introspection answers for, to test
// the handlers of an API that accepts bearer tokens.
//
// A browser signed in at the provider holds the cookie
// "authtest_session", naming a provider session on the server, which
// ends after [Config].SessionTTL without use. With a provider session,
// the authorization endpoint approves its user at once, unless
// prompt=login or prompt=select_account asks for the user chooser, or an
// id_token_hint names another user (then prompt=none answers
// login_required, and otherwise the user chooses again); prompt=none
// without a session answers login_required. Without a session it signs
// in [Config].AutoApprove (or the user an id_token_hint or login_hint
// names), or shows an HTML page with one button per user. The
// end_session endpoint asks before it signs a user out, unless an
// id_token_hint names that user.
//
// Tests steer the provider through its methods: [Provider.Advance]
// moves its clock so codes and tokens expire without sleeping,
// [Provider.RotateKey] and [Provider.RevokeUser] change keys and
// tokens, [Provider.FailNext] injects faults,
// [Provider.BackchannelLogout] and [Provider.LogoutToken] send or mint
// logout tokens, and [Provider.Requests] and [Provider.Grants] report
// what clients did.
//
// The command [github.com/gatehouse/auth/authtest/cmd/authtest] serves
// a provider to try an application against by hand.
//
// It is a test instrument, not a product: state lives in memory, there is
// no consent screen, no dynamic client registration, no request objects,
// and nothing but the authorization code flow.
package authtest
