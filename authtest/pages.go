package authtest

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/auth/internal/pagestyle"
)

// The provider's pages (the user chooser, the logout question and short
// messages) share one small look: a centered card in the system font
// that fits a phone, light or dark as the system is, with no external
// assets and no script (but the one line that submits a form_post
// response, formpost.go). A strict Content-Security-Policy allows the one
// inline stylesheet by its hash.

// pageCSS is the stylesheet of every page; styleSource the CSP source
// that allows it.
const pageCSS = pagestyle.CSS

var styleSource = pagestyle.StyleSource

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
