package storetest_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/storetest"
)

// toyStore is a small Store with every optional interface, whose
// instances can share one backend (as processes share a Redis), and which
// can be broken on purpose in one way or another (faults), to check that
// the suite catches each.
type toyStore struct {
	b      *toyBackend
	faults string // space-separated fault names
	mu     sync.Mutex
	killed time.Time // when the instance was killed, zero while it lives
}

type toyBackend struct {
	mu       sync.Mutex
	sessions map[string]toySession
	deleted  map[string]bool
	claims   map[string]time.Time
	locks    map[string]*toyLock
	buf      []byte // for the fault reuseBuffer
}

type toySession struct {
	data []byte
	info auth.SessionInfo
}

type toyLock struct {
	owner *toyStore
	ttl   time.Duration
	at    time.Time
}

var errToyDown = errors.New("toy: connection refused")

func newToy(faults string) *toyStore {
	return &toyStore{faults: faults, b: &toyBackend{
		sessions: map[string]toySession{},
		deleted:  map[string]bool{},
		claims:   map[string]time.Time{},
		locks:    map[string]*toyLock{},
	}}
}

func (s *toyStore) has(fault string) bool {
	return strings.Contains(" "+s.faults+" ", " "+fault+" ")
}

func (s *toyStore) dead() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.killed.IsZero()
}

func (s *toyStore) down() bool { return s.has("down") || s.dead() }

func (s *toyStore) Load(_ context.Context, id string) ([]byte, bool, error) {
	if s.down() {
		if s.has("downNotFound") {
			return nil, false, nil
		}
		return nil, false, errToyDown
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	e, ok := s.b.sessions[id]
	if !ok && s.has("unknownIsError") {
		return nil, false, errors.New("toy: no such session")
	}
	if !ok || !s.has("noExpiry") && !time.Now().Before(e.info.Expiry) {
		return nil, false, nil
	}
	if s.has("sharedLoad") {
		return e.data, true, nil
	}
	return bytes.Clone(e.data), true, nil
}

func (s *toyStore) Save(_ context.Context, id string, data []byte, info auth.SessionInfo) error {
	if s.down() {
		return errToyDown
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.b.deleted[id] && !s.has("noTombstone") {
		return auth.ErrSessionEnded
	}
	if !s.has("sharedSave") {
		data = bytes.Clone(data)
	}
	if s.has("reuseBuffer") {
		s.b.buf = append(s.b.buf[:0], data...)
		data = s.b.buf
	}
	if s.has("truncate") && len(data) > 60000 {
		data = data[:60000]
	}
	s.b.sessions[id] = toySession{data, info}
	return nil
}

func (s *toyStore) Delete(_ context.Context, id string) error {
	if s.down() && !s.has("downDeleteOK") {
		return errToyDown
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if _, ok := s.b.sessions[id]; !ok && s.has("unknownIsError") {
		return errors.New("toy: no such session")
	}
	delete(s.b.sessions, id)
	s.b.deleted[id] = true
	return nil
}

func (s *toyStore) deleteWhere(match func(auth.SessionInfo) bool) (int, error) {
	if s.down() {
		return 0, errToyDown
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	n := 0
	for id, e := range s.b.sessions {
		if match(e.info) {
			delete(s.b.sessions, id)
			if !s.has("noTombstoneIndexed") {
				s.b.deleted[id] = true
			}
			n++
		}
	}
	return n, nil
}

func (s *toyStore) DeleteSubject(_ context.Context, provider, sub string) (int, error) {
	return s.deleteWhere(func(i auth.SessionInfo) bool {
		return (i.Provider == provider || s.has("anyProvider")) && i.Subject == sub
	})
}

func (s *toyStore) DeleteSID(_ context.Context, provider, sid string) (int, error) {
	return s.deleteWhere(func(i auth.SessionInfo) bool {
		return (i.Provider == provider || s.has("anyProvider")) && i.SID == sid
	})
}

func (s *toyStore) ClaimTokenID(_ context.Context, key string, expiry time.Time) (bool, error) {
	if s.down() {
		if s.has("downClaims") {
			return true, nil
		}
		return false, errToyDown
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if u, ok := s.b.claims[key]; ok && time.Now().Before(u) && !s.has("claimAlwaysFirst") {
		return false, nil
	}
	if _, ok := s.b.claims[key]; ok && s.has("claimForever") {
		return false, nil
	}
	s.b.claims[key] = expiry
	return true, nil
}

func (s *toyStore) ReleaseTokenID(_ context.Context, key string) error {
	if s.down() {
		return errToyDown
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if !s.has("noRelease") {
		delete(s.b.claims, key)
	}
	return nil
}

// held reports whether l still holds its lock at now: while its owner
// lives (it renews), and for ttl after its death.
func (l *toyLock) held(now time.Time) bool {
	o := l.owner
	if o.has("noRenew") {
		return now.Before(l.at.Add(l.ttl))
	}
	o.mu.Lock()
	killed := o.killed
	o.mu.Unlock()
	return killed.IsZero() || o.has("deadHoldsForever") || now.Before(killed.Add(l.ttl))
}

func (s *toyStore) LockRefresh(ctx context.Context, id string, ttl time.Duration) (func(), error) {
	if s.down() {
		return nil, errToyDown
	}
	deadline := time.Now().Add(ttl)
	for {
		s.b.mu.Lock()
		l := s.b.locks[id]
		if l == nil || !l.held(time.Now()) || s.has("noExclusion") {
			mine := &toyLock{owner: s, ttl: ttl, at: time.Now()}
			s.b.locks[id] = mine
			s.b.mu.Unlock()
			var once sync.Once
			return func() {
				unlock := func() {
					s.b.mu.Lock()
					defer s.b.mu.Unlock()
					if s.has("unlockAny") || s.b.locks[id] == mine {
						delete(s.b.locks, id)
					}
				}
				if s.has("unlockAny") {
					unlock()
				} else {
					once.Do(unlock)
				}
			}, nil
		}
		s.b.mu.Unlock()
		if time.Now().After(deadline) {
			return nil, errors.New("toy: lock held too long")
		}
		if !s.has("ignoreContext") && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// peer returns another instance on s's backend, and the function that
// kills it.
func (s *toyStore) peer() (*toyStore, func()) {
	p := &toyStore{b: s.b, faults: s.faults}
	if s.has("separatePeer") {
		p.b = newToy("").b
	}
	return p, func() {
		p.mu.Lock()
		p.killed = time.Now()
		p.mu.Unlock()
	}
}

// toyOptions runs the suite on toy stores with these faults.
func toyOptions(faults string) storetest.Options {
	return storetest.Options{
		NewStore: func(t *testing.T) auth.Store { return newToy(faults) },
		Unreachable: func(t *testing.T) auth.Store {
			return newToy(faults + " down")
		},
		Peer: func(t *testing.T, s auth.Store) (auth.Store, func()) {
			return s.(*toyStore).peer()
		},
	}
}

// TestToyStore: the suite passes a store that keeps the contract.
func TestToyStore(t *testing.T) {
	toyOptions("").Run(t)
}

// TestSuiteCatches: for each way of breaking the toy store, the check that
// must catch it fails. Each runs in a child process (this test binary,
// running TestBrokenToy) so that its failure does not fail this test.
func TestSuiteCatches(t *testing.T) {
	if os.Getenv("STORETEST_FAULTS") != "" {
		t.Skip("in a child process")
	}
	// The checks that take seconds to catch their fault.
	slow := map[string]bool{"ExpiryShort": true, "ReplayGuardExpiry": true, "Peer/DeadHolderFreesLockAfterTTL": true}
	for _, tt := range []struct{ faults, check, want string }{
		{"unknownIsError", "LoadUnknown", "want not found"},
		{"unknownIsError", "Delete", "Delete of an ID never saved"},
		{"sharedSave", "Copies", "after the caller changed the slice it saved"},
		{"sharedLoad", "Copies", "after the caller changed the slice a Load returned"},
		{"truncate", "LargeValue", "of a 64 KiB session"},
		{"noExpiry", "ExpiryPast", "after Save with Expiry a minute ago"},
		{"noExpiry", "ExpiryShort", "want not found after its Expiry"},
		{"noTombstone", "SaveAfterDelete", "want an error wrapping auth.ErrSessionEnded"},
		{"noTombstone", "SaveRacingDelete/Delete", "after the deletion had returned"},
		{"noTombstoneIndexed", "SaveRacingDelete/DeleteSubject", "after the deletion had returned"},
		{"noTombstoneIndexed", "SIDDeleter", "Save of a session DeleteSID deleted"},
		{"anyProvider", "SubjectDeleter", "DeleteSubject(p, alice) = 4"},
		{"anyProvider", "SIDDeleter", "DeleteSID(p, sid) = 3"},
		{"claimAlwaysFirst", "ReplayGuard", "of the same key again = true"},
		{"noRelease", "ReplayGuard", "after ReleaseTokenID = false"},
		{"claimForever", "ReplayGuardExpiry", "once the first claim expired"},
		{"noExclusion", "RefreshLocker/Excludes", "holders of one lock at once"},
		{"noExclusion", "RefreshLocker/WaiterGetsItAfterUnlock", "want it to wait for the holder"},
		{"unlockAny", "RefreshLocker/UnlockIdempotent", "called its unlock again: got the lock"},
		{"ignoreContext", "RefreshLocker/ContextEnds", "want an error promptly"},
		{"noRenew", "RefreshLocker/HeldPastTTL", "after a live holder took it with ttl 200ms: got the lock"},
		{"downNotFound", "Unreachable", "not found would sign the user out"},
		{"downDeleteOK", "Unreachable", "Delete with the backend unreachable: nil"},
		{"downClaims", "Unreachable", "ClaimTokenID with the backend unreachable = true"},
		{"separatePeer", "Peer/SessionsShared", "on the peer after Save on the first"},
		{"deadHoldsForever", "Peer/DeadHolderFreesLockAfterTTL", "want the lock once the ttl has passed"},
		{"reuseBuffer", "Concurrency", "of a goroutine's own session"},
	} {
		t.Run(tt.faults+"/"+tt.check, func(t *testing.T) {
			if slow[tt.check] && testing.Short() {
				t.Skip("slow, and -short")
			}
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenToy$/^storetest$/^"+strings.ReplaceAll(tt.check, "/", "$/^")+"$", "-test.v")
			cmd.Env = append(os.Environ(), "STORETEST_FAULTS="+tt.faults)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("suite on a toy store with fault %s: passed; want check %s to fail\n%s", tt.faults, tt.check, out)
			}
			if !bytes.Contains(out, []byte("--- FAIL: TestBrokenToy/storetest/"+tt.check)) || !bytes.Contains(out, []byte(tt.want)) {
				t.Errorf("suite on a toy store with fault %s: output lacks a failure of %s saying %q:\n%s", tt.faults, tt.check, tt.want, out)
			}
		})
	}
}

// TestBrokenToy runs the suite on a toy store with the faults in
// STORETEST_FAULTS, for TestSuiteCatches.
func TestBrokenToy(t *testing.T) {
	faults := os.Getenv("STORETEST_FAULTS")
	if faults == "" {
		t.Skip("run by TestSuiteCatches")
	}
	toyOptions(faults).Run(t)
}
