package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// This file holds a provider's signing keys (its JWKS). A token that names
// a key we do not hold makes us fetch the keys again, so a provider's key
// rotation needs nothing from anyone. Fetches are shared and budgeted:
//
//   - One fetch at a time: callers that find a fetch running wait for its
//     result, and a caller whose keys are older than the last fetch uses
//     that fetch's result instead of starting another.
//   - Each real fetch spends one token from the caller's budget (a few in
//     a row, then one per refill interval); waiting for or reusing a fetch
//     spends nothing. Tokens from the provider's own token endpoint and
//     tokens anyone can send (back-channel logout) have separate budgets,
//     so junk from the internet cannot spend the fetches that logins and
//     refreshes need after a rotation.
//   - A token whose key we cannot get right now (no fetch allowed, or the
//     fetch failed) fails with errKeysUnavailable, never as an invalid
//     token: a refresh then keeps the session and its new tokens.

const (
	maxJWKSBytes = 1 << 20
	jwksTimeout  = 10 * time.Second
	// maxKeyAge is how long fetched keys are used before they are
	// fetched again, so that a withdrawn key stops verifying.
	maxKeyAge = time.Hour
)

var (
	// errKeysUnavailable: the token names a key we do not hold, and the
	// keys cannot be fetched now (the budget is spent, or the provider
	// failed to answer). Not the token's fault.
	errKeysUnavailable = errors.New("auth: provider keys unavailable")
	// errUnknownKey: the token names a key the provider does not publish,
	// even in keys fetched since the token arrived.
	errUnknownKey = errors.New("auth: token signed with an unknown key")
)

// fetchBudget is a token bucket of key fetches, guarded by keySet.mu.
type fetchBudget struct {
	burst  float64       // fetches allowed in a row
	every  time.Duration // one more fetch allowed per interval
	tokens float64
	refill time.Time
}

func newFetchBudget(burst int, every time.Duration) *fetchBudget {
	return &fetchBudget{burst: float64(burst), every: every, tokens: float64(burst)}
}

// take spends one fetch if the budget allows it now.
func (b *fetchBudget) take(now time.Time) bool {
	if b.refill.IsZero() {
		b.refill = now
	}
	if d := now.Sub(b.refill); d > 0 {
		b.tokens = min(b.burst, b.tokens+float64(d)/float64(b.every))
		b.refill = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// keySet is a provider's published signing keys.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time
	algs   []jose.SignatureAlgorithm

	// provider and public are the fetch budgets of tokens that come from
	// the provider's token endpoint (login, refresh) and of tokens anyone
	// can send (back-channel logout, bearer tokens).
	provider, public *fetchBudget

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	gen       uint64        // completed fetches
	fetching  chan struct{} // closed when the running fetch ends; nil when none runs
	lastErr   error         // of the last completed fetch
	fetchedAt time.Time     // when keys were fetched
}

func newKeySet(url string, client *http.Client, now func() time.Time, algs []string) *keySet {
	k := &keySet{
		url: url, client: client, now: now,
		provider: newFetchBudget(4, 10*time.Second),
		public:   newFetchBudget(2, 30*time.Second),
	}
	for _, a := range algs {
		k.algs = append(k.algs, jose.SignatureAlgorithm(a))
	}
	return k
}

// verify checks raw's signature with the key it names and returns its
// payload. A token with a kid is checked against that key only; a token
// without one is accepted only when the provider has a single signing key.
// A key we do not hold is fetched within budget. The errors: a malformed
// token or bad signature (the token is bad), errUnknownKey, and
// errKeysUnavailable (see above).
func (k *keySet) verify(ctx context.Context, raw string, budget *fetchBudget) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, k.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	k.mu.Lock()
	keys, gen := k.keys, k.gen
	if now := k.now(); gen > 0 && now.Sub(k.fetchedAt) > maxKeyAge && k.fetching == nil && budget.take(now) {
		// Known keys are checked again now and then, so that a key the
		// provider withdrew stops verifying: in the background, this
		// token goes on with the keys at hand.
		k.fetching = make(chan struct{})
		go k.run(k.fetching)
	}
	k.mu.Unlock()
	if payload, found := verifyWith(jws, keys, kid); found {
		if payload == nil {
			return nil, errors.New("bad signature")
		}
		return payload, nil
	}
	// The key is not one we hold: the provider may have rotated its keys.
	// A fetch that was already running when the token arrived may have
	// read the keys from before the rotation: then one more is allowed.
	for try := 0; ; try++ {
		var started bool
		keys, gen, started, err = k.fetch(ctx, budget, gen)
		if err != nil {
			return nil, err
		}
		payload, found := verifyWith(jws, keys, kid)
		switch {
		case found && payload == nil:
			return nil, errors.New("bad signature")
		case found:
			return payload, nil
		case started || try > 0:
			return nil, fmt.Errorf("%w (kid %q)", errUnknownKey, kid)
		}
	}
}

// verifyWith checks jws with the key it names. found reports whether
// keys hold that key (or, for a token without kid, exactly one signing
// key for its algorithm); payload is nil when the signature does not
// verify.
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) (payload []byte, found bool) {
	alg := jws.Signatures[0].Header.Algorithm
	var key *jose.JSONWebKey
	for i := range keys {
		if keys[i].Use == "enc" || !keyFits(&keys[i], alg) {
			continue
		}
		if kid == "" {
			if key != nil {
				return nil, false // several keys and no kid: ambiguous
			}
			key = &keys[i]
		} else if keys[i].KeyID == kid {
			key = &keys[i]
			break
		}
	}
	if key == nil {
		return nil, false
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, true
	}
	return payload, true
}

// keyFits reports whether key can verify signatures of algorithm alg: its
// alg, when it names one, is alg, and its type is alg's (RSA for RS and
// PS, EC for ES, OKP for EdDSA).
func keyFits(key *jose.JSONWebKey, alg string) bool {
	if key.Algorithm != "" && key.Algorithm != alg {
		return false
	}
	switch key.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return strings.HasPrefix(alg, "ES")
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// fetch returns keys newer than generation seen, and their generation:
// the result of a fetch that completed since, of the one running now, or
// of a new one, which spends one token of budget (started then reports
// that this call started it).
func (k *keySet) fetch(ctx context.Context, budget *fetchBudget, seen uint64) (keys []jose.JSONWebKey, gen uint64, started bool, err error) {
	k.mu.Lock()
	if k.gen == seen && k.fetching == nil {
		if !budget.take(k.now()) {
			k.mu.Unlock()
			return nil, seen, false, fmt.Errorf("%w: fetched too recently to fetch again", errKeysUnavailable)
		}
		k.fetching = make(chan struct{})
		started = true
		go k.run(k.fetching)
	}
	if k.gen == seen {
		done := k.fetching
		k.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, seen, started, fmt.Errorf("%w: %w", errKeysUnavailable, ctx.Err())
		}
		k.mu.Lock()
	}
	keys, gen, err = k.keys, k.gen, k.lastErr
	k.mu.Unlock()
	if err != nil {
		return nil, gen, started, fmt.Errorf("%w: %w", errKeysUnavailable, err)
	}
	return keys, gen, started, nil
}

// run fetches the keys and publishes the result to everyone waiting on
// done. It runs on its own, so one caller giving up fails no other.
func (k *keySet) run(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), jwksTimeout)
	defer cancel()
	keys, err := k.get(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err == nil {
		k.keys, k.fetchedAt = keys, k.now()
	}
	k.lastErr = err
	k.gen++
	k.fetching = nil
	close(done)
}

// get reads the JWKS document. Keys of types go-jose does not know are
// skipped, not fatal.
func (k *keySet) get(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: status %d", res.StatusCode)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, maxJWKSBytes)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var key jose.JSONWebKey
		if json.Unmarshal(raw, &key) == nil && key.Valid() && key.IsPublic() {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: no usable key")
	}
	return keys, nil
}

// verifiedKeySet hands go-oidc the payload of the one token whose
// signature keySet.verify has already checked, so that go-oidc's verifier
// checks the claims without verifying (or fetching) again.
type verifiedKeySet struct {
	raw     string
	payload []byte
}

func (v verifiedKeySet) VerifySignature(_ context.Context, raw string) ([]byte, error) {
	if raw != v.raw {
		return nil, errors.New("auth: token changed between checks")
	}
	return v.payload, nil
}
