package authtest

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// This file is the form_post response mode (OAuth 2.0 Form Post Response
// Mode, section 2): with response_mode=form_post, the authorization
// response is a page whose form, holding the response parameters as
// hidden fields, the browser posts to the redirect URI. A script submits
// it as soon as the page loads, as real providers do; without script, a
// button does. The page's Content-Security-Policy allows that one script
// by its hash, and the form's target by its origin.

// formPostScript submits the page's form.
const formPostScript = `document.forms[0].submit()`

// scriptSource is the CSP source that allows formPostScript.
var scriptSource = func() string {
	sum := sha256.Sum256([]byte(formPostScript))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

var _ = template.Must(pages.New("formpost").Parse(`{{template "top" "Signing in"}}<h1>Signing in to {{.ClientName}}</h1>
<form method="post" action="{{.Action}}">
{{range .Params}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<noscript><p>Your browser does not run scripts: continue with this button.</p>
<button class="primary" type="submit">Continue</button></noscript>
</form>
{{template "bottom" .Issuer}}<script>` + formPostScript + `</script>
`))

type formPostPage struct {
	ClientName, Issuer string
	Action             any
	Params             []param
}

// respond sends the authorization response params to redirectURI: by
// redirect, or with formPost by a page that posts them there. Either way
// it adds iss when configured (RFC 9207).
func (p *Provider) respond(w http.ResponseWriter, r *http.Request, redirectURI string, formPost bool, params url.Values) {
	if !formPost {
		p.redirect(w, r, redirectURI, params)
		return
	}
	params = cloneValues(params)
	if p.cfg.IssuerParameter {
		params.Set("iss", p.URL)
	}
	page := formPostPage{ClientName: p.cfg.ClientName, Issuer: p.URL, Action: linkURL(redirectURI)}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if v := params.Get(k); v != "" {
			page.Params = append(page.Params, param{k, v})
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src "+scriptSource+"; style-src "+styleSource+
		"; form-action "+orNone(cspSource(redirectURI))+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	pages.ExecuteTemplate(w, "formpost", page)
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func orNone(src string) string {
	if src == "" {
		return "'none'"
	}
	return src
}

// A form_post page as respond writes it, for Login to submit.
var (
	formTag    = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	hiddenTags = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// formPostRequest returns the POST that a browser would send for the
// form_post page in body, and whether body is one.
func formPostRequest(body string) (action string, form url.Values, ok bool) {
	m := formTag.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, formPostScript) {
		return "", nil, false
	}
	form = url.Values{}
	for _, in := range hiddenTags.FindAllStringSubmatch(body, -1) {
		form.Add(html.UnescapeString(in[1]), html.UnescapeString(in[2]))
	}
	return html.UnescapeString(m[1]), form, true
}

// submitFormPost posts the form of a form_post page res, as the browser's
// script would, and returns the answer; any other response is returned as
// it is. It reports whether it posted a code to a registered redirect URI.
func (p *Provider) submitFormPost(c *http.Client, res *http.Response) (*http.Response, bool, error) {
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		!strings.HasPrefix(res.Request.URL.String(), p.URL+"/") {
		return res, false, nil
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if err != nil {
		return nil, false, err
	}
	action, form, ok := formPostRequest(string(b))
	if !ok {
		res.Body = io.NopCloser(strings.NewReader(string(b)))
		return res, false, nil
	}
	u, err := url.Parse(action)
	if err != nil || !u.IsAbs() {
		return nil, false, errors.New("authtest: form_post page with a bad action")
	}
	res, err = c.PostForm(action, form)
	return res, form.Has("code") && p.isRedirectURI(u), err
}
