package redisstore_test

import (
	"context"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/redisstore"
	"github.com/redis/go-redis/v9"
)

// Sessions in Redis, shared by every instance of the application, with the
// back-channel logout endpoint mounted and a "log out everywhere" button.
func ExampleNew() {
	ctx := context.Background()
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: []string{"localhost:6379"}, // several for Cluster; with MasterName, Sentinel
		// Fail fast when Redis is down: protected routes answer 503.
		DialTimeout:  time.Second,
		ReadTimeout:  500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond,
	})
	defer rdb.Close()
	a, err := auth.New(ctx, auth.Config{
		Issuer:                os.Getenv("AUTH_ISSUER"),
		ClientID:              os.Getenv("AUTH_CLIENT_ID"),
		ClientSecret:          os.Getenv("AUTH_CLIENT_SECRET"),
		RedirectURL:           "https://app.example.com/auth/callback",
		CookieSecret:          []byte(os.Getenv("AUTH_COOKIE_SECRET")),
		Store:                 redisstore.New(rdb, redisstore.Options{}),
		BackchannelLogoutPath: "/auth/backchannel-logout", // register https://app.example.com/auth/backchannel-logout
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /logout-everywhere", a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := auth.User(r.Context())
		if _, err := a.EndSessions(r.Context(), u.Provider, u.Subject); err != nil {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})))
	log.Fatal(http.ListenAndServe(":8080", a.Handler(mux)))
}
