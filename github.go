package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
)

// This file holds GitHub's quirks. GitHub is plain OAuth 2.0, not OpenID
// Connect: there is no ID token, the user comes from its REST API.

// GitHub endpoints, from "Authorizing OAuth apps"
// (https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps)
// and "Getting started with the REST API"
// (https://docs.github.com/en/rest/using-the-rest-api/getting-started-with-the-rest-api).
const (
	githubAuthURL  = "https://github.com/login/oauth/authorize"
	githubTokenURL = "https://github.com/login/oauth/access_token"
	githubUserURL  = "https://api.github.com/user"
)

// GitHub returns a [Provider] named "github" for a GitHub OAuth app or
// GitHub App, with the client ID and secret from its settings page and the
// callback URL RedirectURL/github registered there (RedirectURL itself when
// GitHub is the only provider).
//
// The user comes from GET /user: its numeric id (as a string) is the sub,
// and login, name and avatar_url (as picture) are kept. The email is the
// account's verified primary address from GET /user/emails (so a private
// address is found too); without that, the public profile address, marked
// unverified. Scopes are read:user and user:email.
//
// A token from an OAuth app does not expire: the session keeps it until
// it is revoked. A GitHub App with expiring user tokens gets a refresh
// token, used like any other. Logout deletes the token through GitHub's
// "Delete an app token" API, which needs the client secret.
//
// For GitHub Enterprise Server, replace the three URLs with the server's
// (https://HOST/login/oauth/authorize, .../access_token and
// https://HOST/api/v3/user).
func GitHub(clientID, clientSecret string) Provider {
	return Provider{
		Name:         "github",
		DisplayName:  "GitHub",
		ClientID:     clientID,
		ClientSecret: clientSecret,
		Scopes:       []string{"read:user", "user:email"},
		AuthURL:      githubAuthURL,
		TokenURL:     githubTokenURL,
		UserURL:      githubUserURL,
		quirks:       githubQuirks{},
		// The token endpoint takes client_id and client_secret as POST
		// parameters ("Authorizing OAuth apps", step 2).
		authStyle: oauth2.AuthStyleInParams,
	}
}

type githubQuirks struct{ standard }

// githubHeader goes on every REST API request. The API rejects requests
// without a User-Agent ("Getting started with the REST API", User-Agent),
// which getJSON sets; it recommends this Accept type and pinning the API
// version ("API Versions").
var githubHeader = http.Header{
	"Accept":               {"application/vnd.github+json"},
	"X-Github-Api-Version": {"2022-11-28"},
}

// githubUser is what we read of GET /user ("Get the authenticated user").
type githubUser struct {
	ID        int64   `json:"id"`
	Login     string  `json:"login"`
	Name      *string `json:"name"`
	Email     *string `json:"email"` // the public profile address; null when none is public
	AvatarURL string  `json:"avatar_url"`
	HTMLURL   string  `json:"html_url"`
}

// githubEmail is one entry of GET /user/emails ("List email addresses for
// the authenticated user"; needs the user:email scope).
type githubEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

func (githubQuirks) user(ctx context.Context, p *provider, tok *oauth2.Token) ([]byte, error) {
	userURL := p.kind.userinfoURL()
	var u githubUser
	if err := getJSON(ctx, p.client, userURL, tok, githubHeader, &u); err != nil {
		return nil, fmt.Errorf("auth: github user: %w", err)
	}
	if u.ID == 0 {
		return nil, fmt.Errorf("auth: github user: %w: no id", ErrProviderUnavailable)
	}
	claims := map[string]any{
		"sub":                strconv.FormatInt(u.ID, 10),
		"login":              u.Login,
		"preferred_username": u.Login,
		"name":               u.Login,
	}
	if u.Name != nil && *u.Name != "" {
		claims["name"] = *u.Name
	}
	if u.AvatarURL != "" {
		claims["picture"] = u.AvatarURL
	}
	if u.HTMLURL != "" {
		claims["profile"] = u.HTMLURL
	}

	// The public address, if any, is one the user chose to show; the
	// emails list says whether it (or else the primary one) is verified.
	public := ""
	if u.Email != nil {
		public = *u.Email
	}
	var emails []githubEmail
	if err := getJSON(ctx, p.client, userURL+"/emails", tok, githubHeader, &emails); err != nil {
		// No user:email scope (a GitHub App without the email
		// permission), or GitHub is struggling: sign in without
		// knowing whether the address is verified.
		p.log.WarnContext(ctx, "auth: github emails request failed", "error", err)
	}
	if email, verified := pickGitHubEmail(emails, public); email != "" {
		claims["email"], claims["email_verified"] = email, verified
	}
	return marshalClaims(claims)
}

// pickGitHubEmail returns the public address if it is verified, else the
// verified primary one, else the public address marked unverified.
func pickGitHubEmail(emails []githubEmail, public string) (string, bool) {
	for _, e := range emails {
		if e.Verified && public != "" && strings.EqualFold(e.Email, public) {
			return e.Email, true
		}
	}
	for _, e := range emails {
		if e.Primary && e.Verified {
			return e.Email, true
		}
	}
	return public, false
}

// errorCode maps GitHub's token endpoint errors, which it sends with 200
// OK ("Troubleshooting OAuth app access token request errors"; "Refreshing
// user access tokens"), to RFC 6749's: an unknown, expired or used code or
// refresh token is invalid_grant, so that a rejected refresh ends the
// session.
func (githubQuirks) errorCode(code string) string {
	switch code {
	case "bad_verification_code", "bad_refresh_token":
		return "invalid_grant"
	case "incorrect_client_credentials":
		return "invalid_client"
	}
	return code
}

// revoke deletes the session's access token with "Delete an app token":
// DELETE /applications/{client_id}/token on the API, authenticated with
// the client ID and secret as Basic credentials, the token in a JSON body;
// 204 on success. GitHub has no RFC 7009 endpoint.
func (githubQuirks) revoke(ctx context.Context, p *provider, s *session) error {
	if s.access == "" || p.oauth.ClientSecret == "" {
		return nil
	}
	api, ok := strings.CutSuffix(p.kind.userinfoURL(), "/user")
	if !ok {
		return errors.New("auth: github revoke: UserURL does not end in /user")
	}
	body, err := json.Marshal(map[string]string{"access_token": s.access})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, api+"/applications/"+url.PathEscape(p.clientID)+"/token", bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range githubHeader {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(p.clientID, p.oauth.ClientSecret)
	res, err := p.client.Do(req)
	return checkStatus(res, err, http.StatusNoContent)
}
