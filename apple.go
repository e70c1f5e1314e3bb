package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	jose "github.com/go-jose/go-jose/v4"
)

// This file holds Sign in with Apple's quirks. Apple is OpenID Connect
// with discovery, and three departures, each from Apple's documentation
// ("Sign in with Apple REST API", "Generate and validate tokens",
// "Incorporating Sign in with Apple into other platforms",
// https://developer.apple.com/documentation/signinwithapplerestapi and
// https://developer.apple.com/documentation/signinwithapple):
//
//   - The client secret is a JWT the client signs itself ("Creating a
//     client secret"): ES256 with the Sign in with Apple private key (the
//     .p8 file), kid the key's ID, iss the team ID, sub the client ID (the
//     Services ID), aud https://appleid.apple.com, and an exp at most
//     15777000 seconds (six months) after iat. It is sent as
//     client_secret (client_secret_post, the one method Apple's discovery
//     document lists) to the token endpoint, for the code and for
//     refresh, and to the revocation endpoint ("Revoke tokens").
//   - Asking for the name or email scope requires response_mode=form_post
//     ("Request an authorization to the Sign in with Apple server":
//     "response_mode must be form_post when name or email scope is
//     requested"). The user's name is not in the ID token: Apple posts it
//     once, at the user's first authorization of the app, as the form
//     field user, a JSON object {"name":{"firstName","lastName"},
//     "email"}; later logins do not have it.
//   - The ID token's email_verified and is_private_email may be the
//     strings "true" and "false" ("Authenticating users with Sign in with
//     Apple", the identity token's claims).

// appleIssuer is Apple's issuer; its discovery document is at
// https://appleid.apple.com/.well-known/openid-configuration.
const appleIssuer = "https://appleid.apple.com"

// appleSecretLifetime is how long each client secret we make is valid;
// Apple accepts up to six months. A new one is made when a quarter of it
// is left.
const appleSecretLifetime = time.Hour

// appleMaxSecretLifetime is Apple's limit: exp at most 15777000 seconds
// after iat ("Creating a client secret").
const appleMaxSecretLifetime = 15777000 * time.Second

// Apple returns a [Provider] named "apple" for Sign in with Apple on the
// web, with the Services ID that is the client ID (its "Return URLs" must
// list RedirectURL/apple, or RedirectURL itself when Apple is the only
// provider, and Apple accepts only https), and the Sign in with Apple key
// of the team: the team ID, the key's ID, and the key itself, the .p8
// file Apple lets you download once ([ParseClientKey] reads it). From
// these the provider makes its client secret, a JWT signed with the key,
// valid for an hour and made again before it expires.
//
// The scopes are openid, name and email, so the login uses
// ResponseMode form_post (which Apple requires for them), and
// RedirectURL must be https. Apple sends the user's name only at their
// first login to the app, not in the ID token: [Identity].Name has it at
// that login (and for that session), so keep it in Config.OnLogin.
// Apple's email is verified; for a user who hides theirs it is an
// address at privaterelay.appleid.com (the is_private_email claim).
// Logout revokes the tokens at Apple.
func Apple(servicesID, teamID, keyID string, key crypto.Signer) Provider {
	return Provider{
		Name:         "apple",
		DisplayName:  "Apple",
		Issuer:       appleIssuer,
		ClientID:     servicesID,
		Scopes:       []string{"openid", "name", "email"},
		ResponseMode: responseFormPost,
		quirks:       appleQuirks{},
		mintSecret:   appleSecret(servicesID, teamID, keyID, key),
	}
}

// appleSecret returns Apple's client secret maker ("Creating a client
// secret"). Its settings are checked when New makes the first one.
func appleSecret(servicesID, teamID, keyID string, key crypto.Signer) *mintedSecret {
	return &mintedSecret{
		what:     fmt.Sprintf("ES256, kid %q, team %q", keyID, teamID),
		lifetime: appleSecretLifetime,
		make: func(now, exp time.Time) (string, error) {
			switch {
			case teamID == "" || keyID == "" || key == nil:
				return "", errors.New("the team ID, the key ID and the key are all required")
			case exp.Sub(now) > appleMaxSecretLifetime:
				return "", errors.New("a client secret for Apple may be valid for six months at most")
			}
			if k, ok := key.Public().(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
				return "", errors.New("the Sign in with Apple key is an ECDSA P-256 key (the .p8 file)")
			}
			var signingKey any = key
			if _, ok := key.(*ecdsa.PrivateKey); !ok {
				signingKey = opaqueKey{key}
			}
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: signingKey, KeyID: keyID}}, nil)
			if err != nil {
				return "", err
			}
			claims, err := json.Marshal(map[string]any{
				"iss": teamID,
				"sub": servicesID,
				"aud": appleIssuer,
				"iat": now.Unix(),
				"exp": exp.Unix(),
			})
			if err != nil {
				return "", err
			}
			jws, err := s.Sign(claims)
			if err != nil {
				return "", err
			}
			return jws.CompactSerialize()
		},
	}
}

type appleQuirks struct{ standard }

// appleBools are the claims Apple may send as the strings "true" and
// "false".
var appleBools = []string{"email_verified", "is_private_email"}

// identity reads Apple's string booleans as booleans: EmailVerified (as
// claims.go does for every provider), and in Claims, so that DecodeClaims
// into a bool field works.
func (appleQuirks) identity(u *Identity) {
	found := false
	_ = scanObject(string(u.Claims), func(k, v string) {
		if slices.Contains(appleBools, k) && (v == `"true"` || v == `"false"`) {
			found = true
		}
	})
	if !found {
		return
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(u.Claims, &claims); err != nil {
		return
	}
	for _, k := range appleBools {
		switch string(claims[k]) {
		case `"true"`:
			claims[k] = json.RawMessage("true")
		case `"false"`:
			claims[k] = json.RawMessage("false")
		}
	}
	if b, err := json.Marshal(claims); err == nil {
		u.Claims = b
	}
}

// maxAppleName bounds each part of the name Apple posts: the user typed
// it, and it goes into the session.
const maxAppleName = 100

// responseClaims reads the user Apple posts at the user's first
// authorization: their name as they chose to share it, as the standard
// claims name, given_name and family_name. It is not signed (the ID
// token's claims are), and the user may have edited it. The email in it
// is ignored: the ID token's is the verified one.
func (appleQuirks) responseClaims(q url.Values) (map[string]any, error) {
	raw := q.Get("user")
	if raw == "" {
		return nil, nil
	}
	var user struct {
		Name struct {
			FirstName string `json:"firstName"`
			LastName  string `json:"lastName"`
		} `json:"name"`
	}
	if err := json.Unmarshal([]byte(raw), &user); err != nil {
		return nil, fmt.Errorf("%w: Apple's user field is not a JSON object: %w", ErrInvalidRequest, err)
	}
	given, family := cleanName(user.Name.FirstName), cleanName(user.Name.LastName)
	claims := map[string]any{}
	if given != "" {
		claims["given_name"] = given
	}
	if family != "" {
		claims["family_name"] = family
	}
	if name := strings.TrimSpace(given + " " + family); name != "" {
		claims["name"] = name
	}
	return claims, nil
}

// cleanName drops control characters and surrounding space from a name,
// and keeps at most maxAppleName characters.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > maxAppleName {
		s = string(r[:maxAppleName])
	}
	return s
}
