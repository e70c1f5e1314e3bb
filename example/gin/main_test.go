package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/gatehouse/auth/internal/demotest"
)

func init() { gin.SetMode(gin.TestMode) }

// TestApp logs in through gin: ginAuth serves /auth/login, /auth/callback
// and /auth/logout, which have no gin route, and ginRequireLogin guards
// /me and /api/userinfo.
func TestApp(t *testing.T) {
	demotest.CheckApp(t, demotest.Start(t, setup, nil))
}

// TestAuthPathsDespiteRoutes checks the middleware still answers its paths
// for methods gin has no route for, and that gin's own 404 still works.
func TestAuthPathsDespiteRoutes(t *testing.T) {
	env := demotest.Start(t, setup, nil)
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/auth/login", http.StatusFound},
		{"POST", "/auth/login", http.StatusFound},
		{"GET", "/auth/logout", http.StatusSeeOther},
		{"POST", "/auth/logout", http.StatusSeeOther},
		{"GET", "/auth/callback", http.StatusBadRequest}, // no state: the middleware's error page
		{"GET", "/nowhere", http.StatusNotFound},
	} {
		res, body := demotest.Do(t, demotest.NoRedirects(), tt.method, env.PublicURL+tt.path)
		if res.StatusCode != tt.want {
			t.Errorf("%s %s: %d (%s), want %d", tt.method, tt.path, res.StatusCode, body, tt.want)
		}
	}
}

// committer stands for the middleware's writer: it adds a cookie to the
// headers just before they are written, as a token refreshed in the middle
// of a handler does.
type committer struct {
	http.ResponseWriter
	done bool
}

func (c *committer) commit() {
	if !c.done {
		c.done = true
		c.Header().Add("Set-Cookie", "refreshed=1")
	}
}
func (c *committer) WriteHeader(code int)        { c.commit(); c.ResponseWriter.WriteHeader(code) }
func (c *committer) Write(b []byte) (int, error) { c.commit(); return c.ResponseWriter.Write(b) }
func (c *committer) Flush()                      { c.commit(); http.NewResponseController(c.ResponseWriter).Flush() }

// TestGinWriter checks that every way a gin handler writes a response goes
// through the middleware's writer before the headers are sent. (A handler
// that writes nothing gets its cookies when the middleware finishes, before
// gin writes the headers.)
func TestGinWriter(t *testing.T) {
	for _, tt := range []struct {
		name   string
		handle gin.HandlerFunc
		want   int
	}{
		{"JSON", func(c *gin.Context) { c.JSON(http.StatusCreated, gin.H{"ok": true}) }, http.StatusCreated},
		{"String", func(c *gin.Context) { c.String(http.StatusOK, "hello") }, http.StatusOK},
		{"Data", func(c *gin.Context) { c.Data(http.StatusAccepted, "text/plain", []byte("x")) }, http.StatusAccepted},
		{"WriteString", func(c *gin.Context) { c.Writer.WriteString("x") }, http.StatusOK},
		{"Status only", func(c *gin.Context) { c.Status(http.StatusNoContent) }, http.StatusNoContent},
		{"AbortWithStatus", func(c *gin.Context) { c.AbortWithStatus(http.StatusForbidden) }, http.StatusForbidden},
		{"Redirect", func(c *gin.Context) { c.Redirect(http.StatusFound, "/") }, http.StatusFound},
		{"Flush", func(c *gin.Context) { c.Writer.WriteHeader(http.StatusOK); c.Writer.Flush() }, http.StatusOK},
		{"nothing", func(c *gin.Context) {}, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := gin.New()
			r.Use(func(c *gin.Context) {
				gw := c.Writer
				cw := &committer{ResponseWriter: gw}
				c.Writer = ginWriter{gw, cw}
				c.Next()
				c.Writer = gw
				cw.commit() // as the middleware does once the handler returns
			})
			r.GET("/", tt.handle)
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			res := rec.Result()
			if res.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", res.StatusCode, tt.want)
			}
			if !strings.Contains(strings.Join(res.Header["Set-Cookie"], ";"), "refreshed=1") {
				t.Errorf("Set-Cookie = %q, want the cookie added before the headers went out", res.Header["Set-Cookie"])
			}
		})
	}
}
