// Command seed is Authlib's "Login with Google" Flask app in Go. AUTH_ISSUER
// points it at another provider, such as authtest, for a test run.
package main

import (
	"cmp"
	"context"
	"fmt"
	"html"
	"log"
	"net/http"
	"os"

	"github.com/gatehouse/auth"
)

func main() {
	addr := cmp.Or(os.Getenv("ADDR"), "127.0.0.1:5000")
	a, err := auth.New(context.Background(), auth.Config{
		Issuer:       cmp.Or(os.Getenv("AUTH_ISSUER"), "https://accounts.google.com"),
		ClientID:     os.Getenv("GOOGLE_CLIENT_ID"),
		ClientSecret: os.Getenv("GOOGLE_CLIENT_SECRET"),
		RedirectURL:  "http://" + addr + "/auth",
		CookieSecret: []byte(os.Getenv("SECRET_KEY")), // 32 random characters or more
		LoginPath:    "/login",
		LogoutPath:   "/logout",
	})
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		var user struct{ Name string }
		if err := auth.Userinfo(r.Context(), &user); err != nil {
			fmt.Fprint(w, `<a href="/login">Login with Google</a>`)
			return
		}
		fmt.Fprintf(w, `<p>Hello, %s! <a href="/logout">Logout</a>`, html.EscapeString(user.Name))
	})
	log.Fatal(http.ListenAndServe(addr, a.Handler(http.DefaultServeMux)))
}
