package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// randomSecret returns 32 random bytes, a cookie secret for one process.
func randomSecret() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}

// Serve serves h on the listener until ctx is done (SIGINT or SIGTERM in
// main), then shuts down cleanly: it stops accepting connections, lets the
// requests in progress finish for up to 10 seconds, and closes the embedded
// provider. It returns nil after a clean shutdown.
func (e *Env) Serve(ctx context.Context, h http.Handler) error {
	defer e.Close()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(e.Listener) }()
	e.log.Info("Gatehouse example is running: open this in your browser", "url", e.PublicURL+"/", "listen", e.Listener.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	e.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err == nil {
		e.log.Info("stopped")
	}
	return err
}

// Close closes the listener, stops the embedded provider, if any, and
// runs the functions given to [Env.OnClose], last given first.
func (e *Env) Close() {
	e.Listener.Close()
	if e.Provider != nil {
		e.Provider.Close()
	}
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// OnClose has [Env.Close] call f, such as to close a Redis client once
// [Env.Serve] has let the requests in progress finish.
func (e *Env) OnClose(f func()) {
	e.closers = append(e.closers, f)
}
