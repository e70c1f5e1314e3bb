package auth

import (
	"bytes"
	"container/heap"
	"context"
	"fmt"
	"sync"
	"time"
)

// MemoryStore is a [Store] in the memory of the process: for an
// application that runs as one instance and wants what a Store gives
// (sessions it can revoke, tokens of any size, back-channel logout)
// without running Redis.
//
//	a, err := auth.New(ctx, auth.Config{
//		Issuer:                os.Getenv("AUTH_ISSUER"),
//		ClientID:              os.Getenv("AUTH_CLIENT_ID"),
//		ClientSecret:          os.Getenv("AUTH_CLIENT_SECRET"),
//		RedirectURL:           publicURL + "/auth/callback",
//		CookieSecret:          secret,
//		Store:                 auth.NewMemoryStore(auth.MemoryStoreOptions{}),
//		BackchannelLogoutPath: "/auth/backchannel-logout", // optional
//	})
//
// Its sessions live as long as the process: a restart signs everyone
// out, and two instances of the application do not see each other's
// sessions (use redisstore for that).
//
// It implements [SubjectDeleter] and [SIDDeleter] (for
// [Middleware.EndSessions] and back-channel logout), [ReplayGuard] and
// [RefreshLocker]. A session deleted stays deleted: for two minutes after
// its deletion (by Delete, DeleteSubject or DeleteSID), a Save of its ID
// fails with an error wrapping [ErrSessionEnded], so that a refresh that
// loaded the session before a logout cannot write it back after.
//
// It holds at most [MemoryStoreOptions].MaxSessions sessions and
// MaxBytes bytes. When a Save would go over either, expired sessions make
// room first, then the least recently used (loaded or saved) ones, whose
// users are signed out. A Save costs O(log n) time, plus the removal of a
// few expired sessions; a Load costs O(1) and a copy of the data. There is
// no background goroutine, and nothing to close: expired sessions are
// never returned, and later Saves reclaim their memory. It is safe for
// concurrent use.
type MemoryStore struct {
	now        func() time.Time
	maxEntries int
	maxBytes   int

	mu       sync.Mutex
	sessions map[string]*memEntry
	bytes    int
	lru      memEntry // sentinel of the list by last use: lru.next is the latest
	expiries memHeap  // sessions by expiry, soonest first
	subjects map[memIndexKey]map[string]struct{}
	sids     map[memIndexKey]map[string]struct{}
	deleted  expirySet // IDs deleted in the last memTombstoneTTL
	claimed  expirySet // ReplayGuard keys

	lockMu sync.Mutex
	locks  map[string]*memLock
}

// MemoryStoreOptions configures a [MemoryStore]. The zero value is ready
// to use.
type MemoryStoreOptions struct {
	// MaxSessions is the most sessions the store holds. It also bounds the
	// recently deleted IDs and the logout token IDs it remembers (each
	// about 100 bytes). Default (zero or negative) 100,000.
	MaxSessions int
	// MaxBytes bounds the memory the sessions take, each counted as its
	// data, ID and SessionInfo strings plus 300 bytes. A Save of a session
	// larger than MaxBytes fails. Default (zero or negative) 256 MiB.
	MaxBytes int
	// Now is the store's clock, which decides when sessions and logout
	// token IDs expire; tests can set it to move time forward. Waiting
	// for a refresh lock uses real time. Default time.Now.
	Now func() time.Time
}

const (
	defaultMemMaxSessions = 100_000
	defaultMemMaxBytes    = 256 << 20
	// memEntryOverhead is what a session costs beyond its strings: the
	// entry, its map, heap, list and index slots.
	memEntryOverhead = 300
	// memTombstoneTTL is how long a deleted ID stays deleted, as in
	// redisstore: a refresh that raced with the deletion lasts well under.
	memTombstoneTTL = 2 * time.Minute
	// memSweepBatch is how many expired sessions a write removes at most
	// besides those it must remove to make room.
	memSweepBatch = 16
)

var (
	_ Store          = (*MemoryStore)(nil)
	_ SubjectDeleter = (*MemoryStore)(nil)
	_ SIDDeleter     = (*MemoryStore)(nil)
	_ ReplayGuard    = (*MemoryStore)(nil)
	_ RefreshLocker  = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(opts MemoryStoreOptions) *MemoryStore {
	s := &MemoryStore{
		now:        opts.Now,
		maxEntries: opts.MaxSessions,
		maxBytes:   opts.MaxBytes,
		sessions:   map[string]*memEntry{},
		subjects:   map[memIndexKey]map[string]struct{}{},
		sids:       map[memIndexKey]map[string]struct{}{},
		locks:      map[string]*memLock{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxEntries <= 0 {
		s.maxEntries = defaultMemMaxSessions
	}
	if s.maxBytes <= 0 {
		s.maxBytes = defaultMemMaxBytes
	}
	s.lru.prev, s.lru.next = &s.lru, &s.lru
	s.deleted = newExpirySet(s.maxEntries)
	s.claimed = newExpirySet(s.maxEntries)
	return s
}

// memEntry is one stored session.
type memEntry struct {
	id         string
	data       []byte // never changed once stored: Save replaces it
	info       SessionInfo
	size       int
	heapIndex  int
	prev, next *memEntry
}

// memIndexKey names the sessions of one user, or of one provider session.
type memIndexKey struct{ provider, value string }

// Load implements [Store]. The data returned is the caller's to keep.
func (s *MemoryStore) Load(_ context.Context, id string) ([]byte, bool, error) {
	now := s.now()
	s.mu.Lock()
	e := s.sessions[id]
	if e == nil {
		s.mu.Unlock()
		return nil, false, nil
	}
	if !now.Before(e.info.Expiry) {
		s.remove(e)
		s.mu.Unlock()
		return nil, false, nil
	}
	s.touch(e)
	data := e.data
	s.mu.Unlock()
	return bytes.Clone(data), true, nil
}

// Save implements [Store]. It keeps a copy of data until info.Expiry; a
// session whose Expiry has passed is not stored (and replaces any earlier
// data, so it is not found either). Saving a session deleted less than two
// minutes ago fails with an error wrapping [ErrSessionEnded].
func (s *MemoryStore) Save(_ context.Context, id string, data []byte, info SessionInfo) error {
	size := memEntryOverhead + len(id) + len(data) + len(info.Provider) + len(info.Subject) + len(info.SID)
	if size > s.maxBytes {
		return fmt.Errorf("auth: memory store: save session: %d bytes is more than MaxBytes (%d)", size, s.maxBytes)
	}
	data = bytes.Clone(data)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if s.deleted.has(id, now) {
		return fmt.Errorf("auth: memory store: save session: it was deleted: %w", ErrSessionEnded)
	}
	e := s.sessions[id]
	if !now.Before(info.Expiry) {
		if e != nil {
			s.remove(e)
		}
		return nil
	}
	if e == nil {
		e = &memEntry{id: id, data: data, info: info, size: size}
		s.sessions[id] = e
		heap.Push(&s.expiries, e)
		s.link(e)
	} else {
		s.unindex(e)
		s.bytes -= e.size
		e.data, e.info, e.size = data, info, size
		heap.Fix(&s.expiries, e.heapIndex)
		s.touch(e)
	}
	s.index(e)
	s.bytes += size
	s.makeRoom(now)
	return nil
}

// Delete implements [Store]. The ID stays deleted for two minutes (see
// [MemoryStore.Save]).
func (s *MemoryStore) Delete(_ context.Context, id string) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if e := s.sessions[id]; e != nil {
		s.remove(e)
	}
	s.deleted.add(id, now.Add(memTombstoneTTL), now)
	return nil
}

// DeleteSubject implements [SubjectDeleter]: it deletes every session of
// the user sub signed in by provider, and returns how many had not
// expired.
func (s *MemoryStore) DeleteSubject(_ context.Context, provider, sub string) (int, error) {
	return s.deleteIndexed(s.subjects, memIndexKey{provider, sub}), nil
}

// DeleteSID implements [SIDDeleter]: it deletes every session of the
// provider session sid, and returns how many had not expired.
func (s *MemoryStore) DeleteSID(_ context.Context, provider, sid string) (int, error) {
	if sid == "" {
		return 0, nil
	}
	return s.deleteIndexed(s.sids, memIndexKey{provider, sid}), nil
}

func (s *MemoryStore) deleteIndexed(index map[memIndexKey]map[string]struct{}, k memIndexKey) int {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	set := index[k]
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	n := 0
	for _, id := range ids {
		e := s.sessions[id]
		if now.Before(e.info.Expiry) {
			n++
		}
		s.remove(e)
		s.deleted.add(id, now.Add(memTombstoneTTL), now)
	}
	return n
}

// ClaimTokenID implements [ReplayGuard].
func (s *MemoryStore) ClaimTokenID(_ context.Context, key string, expiry time.Time) (bool, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if s.claimed.has(key, now) {
		return false, nil
	}
	s.claimed.add(key, expiry, now)
	return true, nil
}

// ReleaseTokenID implements [ReplayGuard].
func (s *MemoryStore) ReleaseTokenID(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claimed.remove(key)
	return nil
}

// Len returns the number of sessions stored that have not expired.
func (s *MemoryStore) Len() int {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.expiries) > 0 && !now.Before(s.expiries[0].info.Expiry) {
		s.remove(s.expiries[0])
	}
	return len(s.sessions)
}

// sweep removes a few expired sessions, and the expired deleted IDs and
// token IDs.
func (s *MemoryStore) sweep(now time.Time) {
	for i := 0; i < memSweepBatch && len(s.expiries) > 0 && !now.Before(s.expiries[0].info.Expiry); i++ {
		s.remove(s.expiries[0])
	}
	s.deleted.sweep(now)
	s.claimed.sweep(now)
}

// makeRoom removes sessions until the store is within its bounds: the
// expired ones first, then the least recently used. The session just
// saved, at the front of the list and no larger than maxBytes, stays.
func (s *MemoryStore) makeRoom(now time.Time) {
	for len(s.sessions) > s.maxEntries || s.bytes > s.maxBytes {
		if e := s.expiries[0]; !now.Before(e.info.Expiry) {
			s.remove(e)
			continue
		}
		e := s.lru.prev
		if e == s.lru.next {
			return
		}
		s.remove(e)
	}
}

// remove forgets a session (without marking its ID deleted).
func (s *MemoryStore) remove(e *memEntry) {
	delete(s.sessions, e.id)
	heap.Remove(&s.expiries, e.heapIndex)
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	s.unindex(e)
	s.bytes -= e.size
}

// link puts a new session at the front of the list by last use.
func (s *MemoryStore) link(e *memEntry) {
	e.prev, e.next = &s.lru, s.lru.next
	s.lru.next.prev = e
	s.lru.next = e
}

// touch moves a session to the front of the list by last use.
func (s *MemoryStore) touch(e *memEntry) {
	if s.lru.next == e {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	s.link(e)
}

func (s *MemoryStore) index(e *memEntry) {
	addToIndex(s.subjects, memIndexKey{e.info.Provider, e.info.Subject}, e.id)
	if e.info.SID != "" {
		addToIndex(s.sids, memIndexKey{e.info.Provider, e.info.SID}, e.id)
	}
}

func (s *MemoryStore) unindex(e *memEntry) {
	removeFromIndex(s.subjects, memIndexKey{e.info.Provider, e.info.Subject}, e.id)
	if e.info.SID != "" {
		removeFromIndex(s.sids, memIndexKey{e.info.Provider, e.info.SID}, e.id)
	}
}

func addToIndex(index map[memIndexKey]map[string]struct{}, k memIndexKey, id string) {
	set := index[k]
	if set == nil {
		set = map[string]struct{}{}
		index[k] = set
	}
	set[id] = struct{}{}
}

func removeFromIndex(index map[memIndexKey]map[string]struct{}, k memIndexKey, id string) {
	set := index[k]
	delete(set, id)
	if len(set) == 0 {
		delete(index, k)
	}
}

// memHeap orders sessions by expiry, for container/heap.
type memHeap []*memEntry

func (h memHeap) Len() int           { return len(h) }
func (h memHeap) Less(i, j int) bool { return h[i].info.Expiry.Before(h[j].info.Expiry) }
func (h memHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex, h[j].heapIndex = i, j
}
func (h *memHeap) Push(x any) {
	e := x.(*memEntry)
	e.heapIndex = len(*h)
	*h = append(*h, e)
}
func (h *memHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.heapIndex = -1
	return e
}

// expirySet is a set of keys, each until its own expiry, of at most max
// keys: when full, the key that expires soonest goes. Its queue may hold
// stale items (for keys removed or added again), skipped when they come
// out and dropped when they outnumber the live ones.
type expirySet struct {
	max   int
	until map[string]time.Time
	queue expiryQueue
}

type expiryItem struct {
	key   string
	until time.Time
}

func newExpirySet(max int) expirySet {
	return expirySet{max: max, until: map[string]time.Time{}}
}

func (s *expirySet) has(key string, now time.Time) bool {
	u, ok := s.until[key]
	return ok && now.Before(u)
}

// add puts key in the set until until (a time already past adds nothing).
func (s *expirySet) add(key string, until, now time.Time) {
	if !now.Before(until) {
		delete(s.until, key)
		return
	}
	s.until[key] = until
	heap.Push(&s.queue, expiryItem{key, until})
	for len(s.until) > s.max {
		s.pop()
	}
	if len(s.queue) > 2*len(s.until)+64 {
		s.queue = s.queue[:0]
		for k, u := range s.until {
			s.queue = append(s.queue, expiryItem{k, u})
		}
		heap.Init(&s.queue)
	}
}

func (s *expirySet) remove(key string) { delete(s.until, key) }

// sweep removes the keys expired at now.
func (s *expirySet) sweep(now time.Time) {
	for len(s.queue) > 0 && !now.Before(s.queue[0].until) {
		s.pop()
	}
}

// pop removes the first item of the queue, and its key if the item is
// current.
func (s *expirySet) pop() {
	it := heap.Pop(&s.queue).(expiryItem)
	if u, ok := s.until[it.key]; ok && u.Equal(it.until) {
		delete(s.until, it.key)
	}
}

// expiryQueue orders items by expiry, for container/heap.
type expiryQueue []expiryItem

func (q expiryQueue) Len() int           { return len(q) }
func (q expiryQueue) Less(i, j int) bool { return q[i].until.Before(q[j].until) }
func (q expiryQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *expiryQueue) Push(x any)        { *q = append(*q, x.(expiryItem)) }
func (q *expiryQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = expiryItem{}
	*q = old[:len(old)-1]
	return it
}

// memLock is the refresh lock of one session ID: a semaphore of one, and
// how many holders and waiters use it (it is dropped at zero).
type memLock struct {
	sem  chan struct{}
	refs int
}

// LockRefresh implements [RefreshLocker] in the process. The lock is held
// until unlock is called, however long that is (its holder can only die
// with the process, and the lock with it). While another holder has it,
// LockRefresh waits, for at most ttl, and returns as soon as ctx ends,
// with an error wrapping ctx.Err().
func (s *MemoryStore) LockRefresh(ctx context.Context, id string, ttl time.Duration) (func(), error) {
	s.lockMu.Lock()
	l := s.locks[id]
	if l == nil {
		l = &memLock{sem: make(chan struct{}, 1)}
		s.locks[id] = l
	}
	l.refs++
	s.lockMu.Unlock()
	release := func() {
		s.lockMu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(s.locks, id)
		}
		s.lockMu.Unlock()
	}
	select {
	case l.sem <- struct{}{}:
	default:
		t := time.NewTimer(ttl)
		defer t.Stop()
		select {
		case l.sem <- struct{}{}:
		case <-ctx.Done():
			release()
			return nil, fmt.Errorf("auth: memory store: lock: %w", ctx.Err())
		case <-t.C:
			release()
			return nil, fmt.Errorf("auth: memory store: lock: another holder had it for over %v", ttl)
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-l.sem
			release()
		})
	}, nil
}
