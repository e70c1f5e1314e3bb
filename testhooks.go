package auth

import (
	"time"

	"github.com/gatehouse/auth/internal/testhooks"
)

// The tests of other modules in this repository reach the clock through
// internal/testhooks; see export_test.go for this package's own tests.
func init() {
	testhooks.SetNow = func(m any, now func() time.Time) { m.(*Middleware).now = now }
}
