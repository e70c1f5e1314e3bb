package auth_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

// events records what Config.Metrics receives.
type events struct{ apptest.Recorder[auth.Event] }

// count returns the number of events of kind.
func (e *events) count(kind auth.EventKind) int {
	return len(slices.DeleteFunc(e.Seen(), func(ev auth.Event) bool { return ev.Kind != kind }))
}

// TestMetrics: sign-ins, requests with a session, refreshes (granted,
// reused, ended), failed callbacks, dropped cookies and logouts are
// counted, with the provider's name and nothing about the user.
func TestMetrics(t *testing.T) {
	ev := &events{}
	app := apptest.New(t, authtest.Config{Rotation: authtest.Rotate}, func(c *auth.Config) { c.Metrics = ev.Add })
	c := app.Login(t, "alice")
	old := app.Clone(t, c)
	app.P.Advance(2 * time.Hour)
	app.Me(t, c)   // refreshed
	app.Me(t, old) // the old cookie: reused from the grace cache
	app.P.Advance(time.Hour)
	app.P.RevokeUser("alice")
	app.Me(t, c) // the provider refuses the refresh: ended
	apptest.Get(t, apptest.Browser(t), app.URL+"/auth/callback?state=abcdefghijklmnopqrstuvwxyz&code=x")
	req, _ := http.NewRequest("GET", app.URL+"/", nil)
	req.AddCookie(&http.Cookie{Name: "gatehouse", Value: "garbage"})
	apptest.Do(t, http.DefaultClient, req)
	c = app.Login(t, "bob")
	apptest.Get(t, c, app.URL+"/auth/logout")
	for kind, want := range map[auth.EventKind]int{
		auth.EventLogin: 2, auth.EventRefresh: 1, auth.EventRefreshReused: 1, auth.EventSessionEnded: 1,
		auth.EventLoginFailed: 1, auth.EventSessionDropped: 1, auth.EventLogout: 1,
	} {
		if got := ev.count(kind); got != want {
			t.Errorf("%s events = %d, want %d", kind, got, want)
		}
	}
	if ev.count(auth.EventSession) < 3 {
		t.Errorf("session events = %d, want one per request with a session", ev.count(auth.EventSession))
	}
	for _, e := range ev.Seen() {
		if e.Provider != "" {
			t.Errorf("event %+v: provider %q, want \"\" (the provider of Config.Issuer)", e, e.Provider)
		}
	}
}
