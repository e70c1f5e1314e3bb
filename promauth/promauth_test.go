package promauth_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
	"github.com/gatehouse/auth/promauth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestCounts signs a user in and out through the middleware and reads
// the counts back from the /metrics a scraper would read.
func TestCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	app := apptest.New(t, authtest.Config{}, func(c *auth.Config) { c.Metrics = promauth.New(reg) })
	c := app.Login(t, "alice")
	app.Me(t, c)
	apptest.Get(t, c, app.URL+"/auth/logout")

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, want := range []string{
		`gatehouse_events_total{event="login",provider=""} 1`,
		`gatehouse_events_total{event="logout",provider=""} 1`,
		`gatehouse_events_total{event="session",provider=""}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(string(body), "alice") {
		t.Errorf("/metrics names the user:\n%s", body)
	}
}
