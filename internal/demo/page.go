package demo

import (
	"html/template"

	"github.com/gatehouse/auth"
)

// Home is the data of [HomePage].
type Home struct {
	User   *auth.Identity // the signed-in user, nil when anonymous
	Issuer string         // the provider, shown at the bottom of the page
	// Logins are the login buttons: one per provider when there are
	// several; nil means one "Log in" button to /auth/login.
	Logins []Login
}

// Login is a login button.
type Login struct {
	Label, Path string
}

// DisplayName is the name to greet the user with: their name, else their
// email, else their subject.
func (h Home) DisplayName() string {
	switch {
	case h.User == nil:
		return ""
	case h.User.Name != "":
		return h.User.Name
	case h.User.Email != "":
		return h.User.Email
	}
	return h.User.Subject
}

// HomePage is the template named "home" for the public page "/": a greeting
// and a logout button for a signed-in user, a login link otherwise.
// html/template escapes every value the provider sent.
var HomePage = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Gatehouse example</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5; color: #1f2328; }
h1 { font-size: 1.5rem; }
.card { border: 1px solid #d0d7de; border-radius: 8px; padding: 1rem 1.25rem; }
.greeting { font-size: 1.25rem; margin: 0 0 .5rem; }
a.button, button { display: inline-block; font: inherit; padding: .4rem 1rem; border-radius: 6px; border: 1px solid #1f6feb; background: #1f6feb; color: #fff; text-decoration: none; cursor: pointer; }
button.secondary { background: #fff; color: #1f6feb; }
.muted { color: #656d76; font-size: .875rem; }
code { font-size: .875rem; }
</style>
</head>
<body>
<h1>Gatehouse example</h1>
<div class="card">
{{- if .User}}
<p class="greeting" id="greeting">Hello, {{.DisplayName}}</p>
<p>You are signed in{{with .User.Email}} as <code>{{.}}</code>{{end}}{{with .User.Provider}} with {{.}}{{end}}. See
<a href="/me">/me</a> for your identity and
<a href="/api/userinfo">/api/userinfo</a> for what the provider says about you.</p>
<form method="post" action="/auth/logout"><button type="submit" class="secondary" id="logout">Log out</button></form>
{{- else}}
<p class="greeting">You are not signed in.</p>
{{- if .Logins}}
<p>{{range .Logins}}<a class="button" href="{{.Path}}">{{.Label}}</a> {{end}}</p>
{{- else}}
<p><a class="button" id="login" href="/auth/login">Log in</a></p>
{{- end}}
{{- end}}
</div>
<p class="muted">Provider: <code>{{.Issuer}}</code></p>
</body>
</html>
`))
