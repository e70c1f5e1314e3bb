package storetest_test

import (
	"testing"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/storetest"
)

// The test of a Store runs the suite with a function that returns a new
// store for each check; this one, TestMemoryStore in package auth, checks
// auth.MemoryStore.
func ExampleRun() {
	TestMemoryStore := func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) auth.Store {
			return auth.NewMemoryStore(auth.MemoryStoreOptions{})
		})
	}
	_ = TestMemoryStore // a top-level func in a _test.go file
}
