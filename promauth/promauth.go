// Package promauth counts what Gatehouse does as Prometheus metrics: one
// counter, gatehouse_events_total, labelled by event (login, logout,
// refresh, session_ended, store_error... see auth.EventKind) and provider
// (its name; "" for the provider of Config.Issuer). Labels never hold a
// token, cookie or user.
//
//	a, err := auth.New(ctx, auth.Config{
//		// ...
//		Metrics: promauth.New(prometheus.DefaultRegisterer),
//	})
//	mux.Handle("GET /metrics", promhttp.Handler())
//
// It is a module of its own, so that the auth module does not require
// the Prometheus client.
package promauth

import (
	"sync"

	"github.com/gatehouse/auth"
	"github.com/prometheus/client_golang/prometheus"
)

// New registers gatehouse_events_total with reg and returns the function
// for auth.Config.Metrics that counts each event in it. It panics if reg
// already holds a metric of that name, as prometheus.MustRegister does.
func New(reg prometheus.Registerer) func(auth.Event) {
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_events_total",
		Help: "What the Gatehouse middleware did: sign-ins, logouts, refreshes, ended sessions, store errors, requests with a session.",
	}, []string{"event", "provider"})
	reg.MustRegister(events)
	var counters sync.Map // auth.Event -> prometheus.Counter: no label lookup per request
	return func(e auth.Event) {
		c, ok := counters.Load(e)
		if !ok {
			c, _ = counters.LoadOrStore(e, events.WithLabelValues(string(e.Kind), e.Provider))
		}
		c.(prometheus.Counter).Inc()
	}
}
