package auth

import (
	"encoding/json"
	"fmt"
	"strings"
)

// This file holds Google's quirks. Google is OpenID Connect, so discovery
// does most of the work; what is left are the parameters that get a refresh
// token and the check of a Workspace domain.

// googleIssuer is Google's issuer ("OpenID Connect", Discovery document:
// https://developers.google.com/identity/openid-connect/openid-connect).
const googleIssuer = "https://accounts.google.com"

// GoogleOptions are the options of [Google].
type GoogleOptions struct {
	// Offline asks for a refresh token, so that [Client] keeps working
	// after the first access token expires (an hour): it sends
	// access_type=offline, and prompt=consent because Google issues a
	// refresh token only when the user consents.
	Offline bool
	// HostedDomain admits only users of this Google Workspace domain,
	// such as "example.com": the verified ID token's hd claim must equal
	// it, at login and at every refresh. The hd authorization parameter,
	// also sent, only preselects accounts: it is a hint, not a check.
	// Default "": any Google account.
	HostedDomain string
}

// Google returns a [Provider] named "google" for Google accounts, with the
// OAuth client ID and secret of a "Web application" client from the Google
// Cloud console, which must list RedirectURL/google (RedirectURL itself
// when Google is the only provider) as an authorized redirect URI.
//
// A user outside opts.HostedDomain is refused with [ErrLoginRefused].
func Google(clientID, clientSecret string, opts GoogleOptions) Provider {
	p := Provider{
		Name:         "google",
		DisplayName:  "Google",
		Issuer:       googleIssuer,
		ClientID:     clientID,
		ClientSecret: clientSecret,
		AuthParams:   map[string]string{},
		quirks:       googleQuirks{hd: opts.HostedDomain},
	}
	if opts.Offline {
		// "Refreshing an access token (offline access)" and "prompt" in
		// "Using OAuth 2.0 for Web Server Applications"
		// (https://developers.google.com/identity/protocols/oauth2/web-server).
		p.AuthParams["access_type"] = "offline"
		p.AuthParams["prompt"] = "consent"
	}
	if opts.HostedDomain != "" {
		p.AuthParams["hd"] = opts.HostedDomain
	}
	return p
}

type googleQuirks struct {
	standard
	hd string
}

// checkIDToken checks the hd claim, which Google puts in the ID token of
// Workspace accounts only ("Validating an ID token": check the hd claim,
// not only the hd parameter, which the user can remove).
func (q googleQuirks) checkIDToken(_ *oidcKind, claims []byte) error {
	if q.hd == "" {
		return nil
	}
	var c struct {
		HD string `json:"hd"`
	}
	if err := json.Unmarshal(claims, &c); err != nil {
		return fmt.Errorf("%w: claims: %w", ErrTokenInvalid, err)
	}
	if !strings.EqualFold(c.HD, q.hd) {
		return fmt.Errorf("%w: hosted domain %q is not %q", ErrLoginRefused, c.HD, q.hd)
	}
	return nil
}
