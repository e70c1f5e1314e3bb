package main

// TEMPORARY: stands for auth.NewMemoryStore(auth.MemoryStoreOptions{}),
// which is being written on another branch. Once it is merged, delete this
// file and call auth.NewMemoryStore in sessionStore (store.go).

import (
	"context"
	"sync"
	"time"

	"github.com/gatehouse/auth"
)

func newMemoryStore() auth.Store { return &stubMemoryStore{m: map[string]stubEntry{}} }

type stubEntry struct {
	data []byte
	info auth.SessionInfo
}

// stubMemoryStore keeps sessions in a map, without bounds.
type stubMemoryStore struct {
	mu sync.Mutex
	m  map[string]stubEntry
}

func (s *stubMemoryStore) Load(_ context.Context, id string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[id]
	if !ok || time.Now().After(e.info.Expiry) {
		return nil, false, nil
	}
	return e.data, true, nil
}

func (s *stubMemoryStore) Save(_ context.Context, id string, data []byte, info auth.SessionInfo) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = stubEntry{append([]byte(nil), data...), info}
	return nil
}

func (s *stubMemoryStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

func (s *stubMemoryStore) DeleteSubject(_ context.Context, provider, sub string) (int, error) {
	return s.deleteWhere(func(i auth.SessionInfo) bool { return i.Provider == provider && i.Subject == sub }), nil
}

func (s *stubMemoryStore) DeleteSID(_ context.Context, provider, sid string) (int, error) {
	return s.deleteWhere(func(i auth.SessionInfo) bool { return i.Provider == provider && i.SID == sid }), nil
}

func (s *stubMemoryStore) deleteWhere(match func(auth.SessionInfo) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, e := range s.m {
		if match(e.info) {
			delete(s.m, id)
			n++
		}
	}
	return n
}
