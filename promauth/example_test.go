package promauth_test

import (
	"context"
	"log"
	"net/http"
	"os"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/promauth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func ExampleNew() {
	a, err := auth.New(context.Background(), auth.Config{
		Issuer:       os.Getenv("AUTH_ISSUER"),
		ClientID:     os.Getenv("AUTH_CLIENT_ID"),
		ClientSecret: os.Getenv("AUTH_CLIENT_SECRET"),
		RedirectURL:  "https://app.example.com/auth/callback",
		CookieSecret: []byte(os.Getenv("AUTH_COOKIE_SECRET")),
		Metrics:      promauth.New(prometheus.DefaultRegisterer), // then serve promhttp.Handler() at /metrics
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.Handler())
	log.Fatal(http.ListenAndServe(":8080", a.Handler(mux)))
}
