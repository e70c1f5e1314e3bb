package authtest

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// The provider's pages (the user chooser, the logout question and short
// messages) share one small look: a centered card in the system font
// that fits a phone, light or dark as the system is, with no external
// assets and no script (but the one line that submits a form_post
// response, formpost.go). A strict Content-Security-Policy allows the one
// inline stylesheet by its hash.

// pageCSS is the stylesheet of every page.
const pageCSS = `
:root{color-scheme:light dark;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
--bg:#f3f4f6;--card:#fff;--fg:#111827;--muted:#4b5563;--line:#d1d5db;--accent:#1d4ed8}
@media (prefers-color-scheme:dark){:root{--bg:#111827;--card:#1f2937;--fg:#f9fafb;--muted:#d1d5db;--line:#4b5563;--accent:#93c5fd}}
body{margin:0;min-height:100vh;display:grid;place-items:center;background:var(--bg);color:var(--fg)}
main{box-sizing:border-box;width:min(100% - 2rem,26rem);margin:1rem 0;padding:1.5rem;background:var(--card);border:1px solid var(--line);border-radius:.75rem}
h1{font-size:1.375rem;line-height:1.25;margin:0 0 .5rem;overflow-wrap:anywhere}
p{margin:0 0 1rem}
form{display:grid;gap:.5rem;margin:0 0 1rem}
button{box-sizing:border-box;width:100%;padding:.75rem 1rem;font:inherit;text-align:left;color:var(--fg);background:var(--card);border:1px solid var(--line);border-radius:.5rem;cursor:pointer}
button:hover{border-color:var(--accent)}
button.primary{text-align:center;color:var(--card);background:var(--accent);border-color:var(--accent);font-weight:600}
button.secondary{text-align:center}
small,.note{display:block;color:var(--muted);overflow-wrap:anywhere}
.note{font-size:.875rem;margin:1rem 0 0}
a{color:var(--accent)}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
`

// styleSource is the CSP source that allows pageCSS.
var styleSource = func() string {
	sum := sha256.Sum256([]byte(pageCSS))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

var pages = template.Must(template.New("").Parse(`
{{define "top"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} - authtest</title>
<style>` + pageCSS + `</style>
</head>
<body>
<main>
{{end}}

{{define "bottom"}}<p class="note">authtest, a test OpenID provider at {{.}}</p>
</main>
</body>
</html>
{{end}}

{{define "chooser"}}{{template "top" printf "Sign in to %s" .ClientName}}<h1>Sign in to {{.ClientName}}</h1>
<p>Choose a user:</p>
<form method="post" action="/authorize">
{{range .Params}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}{{range .Users}}<button type="submit" name="sub" value="{{.Subject}}">{{or .Name .Subject}}<small>{{or .Email .Subject}}</small></button>
{{end}}</form>
{{with .Cancel}}<a href="{{.}}">Cancel</a>
{{end}}{{template "bottom" .Issuer}}{{end}}

{{define "logout"}}{{template "top" "Sign out"}}<h1>Sign out?</h1>
<p>{{with .ClientName}}{{.}} asks{{else}}An application asks{{end}} to sign you out{{with .HintSub}} as {{.}}{{end}}.
You are signed in as {{or .User.Name .User.Subject}}{{with .User.Email}} ({{.}}){{end}}.</p>
<form method="post" action="/end_session">
{{range .Params}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<button class="primary" type="submit" name="action" value="logout">Sign out</button>
<button class="secondary" type="submit" name="action" value="cancel">Cancel</button>
</form>
{{template "bottom" .Issuer}}{{end}}

{{define "message"}}{{template "top" .Title}}<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{template "bottom" .Issuer}}{{end}}
`))

type param struct{ Name, Value string }

type chooserPage struct {
	ClientName, Issuer string
	Users              []User
	Params             []param
	Cancel             any // the access_denied response, a URL; nil: no link
}

type logoutPage struct {
	ClientName string // "" if no client is named
	User       User
	HintSub    string // the user the client asked to sign out, if another
	Issuer     string
	Params     []param
}

// writeHTML writes the page name with data. formAction are the CSP
// sources the page's form may post to and be redirected to; none: no
// form.
func (p *Provider) writeHTML(w http.ResponseWriter, status int, name string, data any, formAction ...string) {
	fa := strings.TrimSpace(strings.Join(formAction, " "))
	if fa == "" {
		fa = "'none'"
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src "+styleSource+"; form-action "+fa+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	pages.ExecuteTemplate(w, name, data)
}

// writePage writes a page with a title and a message.
func (p *Provider) writePage(w http.ResponseWriter, status int, title, message string) {
	p.writeHTML(w, status, "message", struct{ Title, Message, Issuer string }{title, message, p.URL})
}

// cspSource returns the CSP source expression for the origin of uri
// (scheme://host[:port], or scheme: for a URI without a host, such as
// an app's custom scheme), or "" if there is none.
func cspSource(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return ""
	}
	src := u.Scheme + ":"
	if u.Host != "" {
		src = u.Scheme + "://" + u.Host
	}
	if strings.ContainsAny(src, " ;,'\"\t\r\n") {
		return ""
	}
	return src
}

// linkURL returns a registered redirect URI for an href: html/template
// lets only http, https and mailto through on its own, and apps
// register custom schemes (RFC 8252 §7.1). Script schemes stay a plain
// string, which the template replaces.
func linkURL(u string) any {
	scheme, _, _ := strings.Cut(strings.ToLower(u), ":")
	switch scheme {
	case "javascript", "vbscript", "data":
		return u
	}
	return template.URL(u)
}
