package main

import (
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/gatehouse/auth"
)

// ginAuth runs the middleware in gin. Register it with r.Use, before the
// routes: gin then runs it for paths without a route too, so it serves
// /auth/login, /auth/callback and /auth/logout. Every other request goes on
// to the next handlers with the signed-in user, if any, in c.Request's
// context.
func ginAuth(a *auth.Middleware) gin.HandlerFunc {
	return func(c *gin.Context) {
		served := true
		a.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served = false
			c.Request = r
			if w != http.ResponseWriter(c.Writer) {
				// A session: send gin's writes through w, which sets the
				// cookie of a token refreshed during the handler.
				gw := c.Writer
				c.Writer = ginWriter{gw, w}
				defer func() { c.Writer = gw }()
			}
			c.Next()
		})).ServeHTTP(c.Writer, c.Request)
		if served {
			c.Abort() // login, callback or logout: the middleware answered
		}
	}
}

// ginRequireLogin lets signed-in requests through and answers the others
// as auth's RequireLogin does: a browser is redirected to login, an API
// caller gets 401.
func ginRequireLogin(a *auth.Middleware) gin.HandlerFunc {
	return func(c *gin.Context) {
		allowed := false
		a.RequireLogin(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			allowed = true
		})).ServeHTTP(c.Writer, c.Request)
		if !allowed {
			c.Abort()
		}
	}
}

// ginWriter is gin's writer with the writes going through w, the
// middleware's writer, which wraps gin's: w adds pending cookies before
// the first byte, then writes to gin's writer, which keeps its status and
// size as usual.
type ginWriter struct {
	gin.ResponseWriter
	w http.ResponseWriter
}

func (g ginWriter) Write(b []byte) (int, error)       { return g.w.Write(b) }
func (g ginWriter) WriteString(s string) (int, error) { return io.WriteString(g.w, s) }
func (g ginWriter) Flush()                            { http.NewResponseController(g.w).Flush() }

func (g ginWriter) WriteHeaderNow() {
	g.w.WriteHeader(g.Status()) // w's cookies; gin's writer only records the status
	g.ResponseWriter.WriteHeaderNow()
}
