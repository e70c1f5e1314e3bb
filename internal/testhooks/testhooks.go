// Package testhooks gives the tests of the other modules in this
// repository (such as redisstore) what the root package's own tests get
// from export_test.go: control of a Middleware's clock, so that tokens
// expire without sleeping. Being internal, it is out of reach of any
// other code.
package testhooks

import "time"

// SetNow replaces the clock of m, an *auth.Middleware, before it serves
// requests. The auth package sets it when it is initialised.
var SetNow func(m any, now func() time.Time)
