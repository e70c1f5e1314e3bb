package auth

import (
	"html/template"
	"net/http"

	"github.com/gatehouse/auth/internal/pagestyle"
)

// This file holds the pages the middleware shows a person: an error (a
// failed login, callback or logout), the question before a logout that
// another site asked for, and the choice of provider. Each is a Page,
// drawn by Config.RenderPage (default: DefaultPage, one small accessible
// look), so an application can give them its own.

// Page is a page the middleware shows a person. Its texts are fixed
// sentences, safe to show: never an error's own text.
type Page struct {
	// Kind is what the page is for: "error", "logout" (confirm a logout
	// that another site asked for) or "chooser" (pick a provider).
	Kind string
	// Status is the HTTP status to answer with.
	Status int
	// Title and Message say what happened, or what is asked.
	Title, Message string
	// Form, when set, is the page's action: a button that POSTs to
	// Form.Action (the logout's "Sign out").
	Form *PageForm
	// Links are the ways on: sign in again, cancel, back to the site, or
	// one per provider on the chooser.
	Links []PageLink
}

// PageForm is a page's action: a button that POSTs to Action.
type PageForm struct {
	Action, Label string
}

// PageLink is a link on a page.
type PageLink struct {
	URL, Label string
}

// DefaultPage draws p in the middleware's own look: a centered card in
// the system font that fits a phone, with no external assets and no
// script, under a strict Content-Security-Policy. It is what
// Config.RenderPage does when it is nil; a RenderPage of your own can
// call it for the pages it does not draw itself.
func DefaultPage(w http.ResponseWriter, r *http.Request, p *Page) {
	formAction := "'none'"
	if p.Form != nil {
		formAction = "'self'"
		if fa, ok := r.Context().Value(formActionKey{}).(string); ok {
			formAction = fa
		}
	}
	pageHeaders(w.Header(), "text/html; charset=utf-8",
		"default-src 'none'; style-src "+pagestyle.StyleSource+"; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.WriteHeader(p.Status)
	if r.Method != http.MethodHead {
		_ = pageTemplate.Execute(w, p)
	}
}

// formActionKey carries, to DefaultPage, the CSP form-action sources of a
// page whose form is redirected elsewhere (the logout's, to the
// provider's end-session endpoint).
type formActionKey struct{}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>` + pagestyle.CSS + `</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
{{with .Message}}<p>{{.}}</p>
{{end}}{{with .Form}}<form method="post" action="{{.Action}}"><button class="primary" type="submit">{{.Label}}</button></form>
{{end}}{{if eq .Kind "chooser"}}<nav>{{range .Links}}<a class="choice" href="{{.URL}}">{{.Label}}</a>
{{end}}</nav>
{{else}}{{range .Links}}<p><a href="{{.URL}}">{{.Label}}</a></p>
{{end}}{{end}}</main>
</body>
</html>
`))

// page draws p with Config.RenderPage, after the headers every page of
// ours carries.
func (m *Middleware) page(w http.ResponseWriter, r *http.Request, p *Page) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	m.renderPage(w, r, p)
}

// errorPage is the page for err: its status and sentence from the error
// table, and the ways on.
func (m *Middleware) errorPage(r *http.Request, err error) *Page {
	status, msg := answer(err)
	p := &Page{Kind: "error", Status: status, Title: pageTitle(status), Message: msg}
	if r.URL.Path == m.logoutPath {
		p.Links = []PageLink{{URL: "/", Label: "Back to the site"}}
		return p
	}
	if status != http.StatusForbidden {
		p.Links = append(p.Links, PageLink{URL: m.loginPath, Label: "Sign in again"})
	}
	p.Links = append(p.Links, PageLink{URL: "/", Label: "Back to the site"})
	return p
}

func pageTitle(status int) string {
	switch {
	case status == http.StatusForbidden:
		return "Access denied"
	case status == http.StatusMethodNotAllowed:
		return "Not allowed"
	case status >= 500:
		return "Please try again"
	}
	return "Sign-in failed"
}
