package auth

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// This file holds Microsoft Entra ID's quirks: the multi-tenant endpoints
// ("common", "organizations") have no single issuer. Their discovery
// document names the template https://login.microsoftonline.com/{tenantid}/v2.0
// and each ID token is issued by the user's own tenant, named in its tid
// claim ("Microsoft identity platform ID tokens", claims iss and tid:
// https://learn.microsoft.com/en-us/entra/identity-platform/id-token-claims-reference;
// "Validate the issuer" in "Convert single-tenant app to multitenant":
// https://learn.microsoft.com/en-us/entra/identity-platform/howto-convert-app-to-be-multi-tenant).

// microsoftLogin is the Entra ID authority host for the global cloud.
const microsoftLogin = "https://login.microsoftonline.com"

// tenantPlaceholder stands for the tenant ID in the issuer of Entra's
// multi-tenant discovery documents.
const tenantPlaceholder = "{tenantid}"

// MicrosoftOptions are the options of [Microsoft].
type MicrosoftOptions struct {
	// AllowedTenants admits only users of these tenants, by tenant ID (a
	// GUID, the tid claim). Default: every tenant the endpoint admits.
	AllowedTenants []string
	// Offline adds the offline_access scope, so that Entra issues a
	// refresh token and [Client] keeps working after the first access
	// token expires.
	Offline bool
}

// Microsoft returns a [Provider] named "microsoft" for Microsoft Entra ID
// (and personal Microsoft accounts), with the application (client) ID and a
// client secret of an app registration whose "Web" redirect URIs list
// RedirectURL/microsoft (RedirectURL itself when Microsoft is the only
// provider).
//
// tenant chooses who may sign in, as the app registration's "supported
// account types" do: "common" (any Entra tenant and personal accounts;
// the default when empty), "organizations" (any Entra tenant),
// "consumers" (personal accounts), or one tenant's ID or domain name. For
// "common" and "organizations", the ID token's iss must be the issuer of
// the tenant its tid claim names; opts.AllowedTenants narrows the tenants
// further. Users outside them are refused with [ErrLoginRefused].
//
// Entra's email claim is an address the tenant has not necessarily
// verified: EmailVerified is true only when the token's optional claim
// xms_edov ("email domain owner verified") is true, whatever
// email_verified says. Identify users by Subject, never by Email.
func Microsoft(tenant, clientID, clientSecret string, opts MicrosoftOptions) Provider {
	if tenant == "" {
		tenant = "common"
	}
	q := microsoftQuirks{orgOnly: strings.EqualFold(tenant, "organizations")}
	for _, t := range opts.AllowedTenants {
		if q.allowed == nil {
			q.allowed = map[string]bool{}
		}
		q.allowed[strings.ToLower(t)] = true
	}
	scopes := []string{"openid", "email", "profile"}
	if opts.Offline {
		scopes = append(scopes, "offline_access")
	}
	return Provider{
		Name:         "microsoft",
		DisplayName:  "Microsoft",
		Issuer:       microsoftLogin + "/" + url.PathEscape(tenant) + "/v2.0",
		ClientID:     clientID,
		ClientSecret: clientSecret,
		Scopes:       scopes,
		quirks:       q,
	}
}

type microsoftQuirks struct {
	standard
	allowed map[string]bool // lowercase tenant IDs; nil admits all
	orgOnly bool            // tenant "organizations": no personal accounts
}

// consumerTenant is the tenant ID of every personal Microsoft account's
// tokens (Microsoft identity platform docs, "ID token claims reference",
// tid).
const consumerTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

// issuer accepts the discovery document of a tenant alias: the template
// for "common" and "organizations", and the tenant's own issuer (named by
// its ID) for a domain name or "consumers". Either must be on the same
// host and end in /v2.0, like the configured issuer.
func (microsoftQuirks) issuer(configured, discovered string) (string, bool, error) {
	if discovered == configured {
		return configured, false, nil
	}
	cu, err := url.Parse(configured)
	if err != nil {
		return "", false, err
	}
	tenant, ok := strings.CutPrefix(discovered, cu.Scheme+"://"+cu.Host+"/")
	if ok {
		tenant, ok = strings.CutSuffix(tenant, "/v2.0")
	}
	switch {
	case ok && tenant == tenantPlaceholder:
		return discovered, true, nil
	case ok && isGUID(tenant):
		return discovered, false, nil
	}
	return "", false, fmt.Errorf("the discovery document names issuer %q, neither %q nor a tenant's issuer on its host", discovered, configured)
}

// checkIDToken checks iss against the template with the token's own tid
// (when the issuer is a template), and tid against the allowed tenants.
func (q microsoftQuirks) checkIDToken(k *oidcKind, claims []byte) error {
	var c struct {
		Iss string `json:"iss"`
		Tid string `json:"tid"`
	}
	if err := json.Unmarshal(claims, &c); err != nil {
		return fmt.Errorf("%w: claims: %w", ErrTokenInvalid, err)
	}
	if k.selfCheck {
		if !isGUID(c.Tid) {
			return fmt.Errorf("%w: no valid tid claim", ErrTokenInvalid)
		}
		if want := strings.Replace(k.issuer, tenantPlaceholder, c.Tid, 1); c.Iss != want {
			return fmt.Errorf("%w: id token issued by %q, want %q for its tenant", ErrTokenInvalid, c.Iss, want)
		}
	}
	if q.allowed != nil && !q.allowed[strings.ToLower(c.Tid)] {
		return fmt.Errorf("%w: tenant %q is not allowed", ErrLoginRefused, c.Tid)
	}
	if q.orgOnly && strings.EqualFold(c.Tid, consumerTenant) {
		// The endpoint refuses personal accounts itself; this holds
		// even if a token for one reached us some other way.
		return fmt.Errorf("%w: a personal account, with tenant organizations", ErrLoginRefused)
	}
	return nil
}

// identity sets EmailVerified from xms_edov: Entra's email claim is "not
// verified" by default ("ID token claims reference", email; "Optional
// claims reference", xms_edov: whether the email domain owner has been
// verified), and an email_verified claim, if a token has one, does not say
// who verified what.
func (microsoftQuirks) identity(u *Identity) {
	v := ""
	_ = scanObject(string(u.Claims), func(k, val string) {
		if k == "xms_edov" {
			v = val
		}
	})
	u.EmailVerified = v == "true" || v == `"true"`
}

// isGUID reports whether s has the form of a GUID, as tenant IDs do.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
