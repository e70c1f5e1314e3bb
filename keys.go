package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// This file holds a provider's signing keys (its JWKS). go-oidc's
// RemoteKeySet fetches the keys again whenever a token names a key it does
// not hold, or fails to verify: right for tokens that come from the
// provider, but the back-channel logout endpoint takes tokens from anyone,
// and a forged one would make us fetch the JWKS once per request. This key
// set fetches on demand too, so a provider's key rotation still needs
// nothing, but from a small bucket: a few fetches in a row, then one per
// refill interval.

const (
	keyFetchBurst  = 4                // fetches allowed in a row
	keyFetchRefill = 10 * time.Second // one more fetch allowed per interval
	maxJWKSBytes   = 1 << 20
)

// errKeysUnavailable marks a verification that failed because the keys
// could not be fetched (the provider is down), not because the token is
// bad: a refresh then keeps the session. go-oidc formats KeySet errors
// with %v, so callers check keySet.fetchFailing rather than errors.Is.
var errKeysUnavailable = errors.New("auth: provider keys unavailable")

// keySet implements oidc.KeySet.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time
	algs   []jose.SignatureAlgorithm
	group  singleflight.Group

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	tokens  float64 // fetch bucket
	refill  time.Time
	failing bool // the last fetch failed
}

func newKeySet(url string, client *http.Client, now func() time.Time, algs []string) *keySet {
	k := &keySet{url: url, client: client, now: now, tokens: keyFetchBurst, refill: now()}
	for _, a := range algs {
		k.algs = append(k.algs, jose.SignatureAlgorithm(a))
	}
	return k
}

// VerifySignature implements oidc.KeySet: it returns the payload of a JWT
// signed by one of the provider's keys. A token with a kid is checked
// against that key only; a token without one is accepted only when the
// provider has a single signing key.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, k.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	k.mu.Lock()
	keys := k.keys
	k.mu.Unlock()
	if payload, found := verifyWith(jws, keys, kid); found {
		if payload == nil {
			return nil, errors.New("bad signature")
		}
		return payload, nil
	}
	// The key is not one we hold: the provider may have rotated its keys.
	keys, err = k.fetch(ctx)
	if err != nil {
		return nil, err
	}
	if payload, found := verifyWith(jws, keys, kid); found && payload != nil {
		return payload, nil
	}
	return nil, fmt.Errorf("no provider key verifies the token (kid %q)", kid)
}

// verifyWith checks jws with the key it names. found reports whether
// keys hold that key (or, for a token without kid, exactly one signing
// key); payload is nil when the signature does not verify.
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) (payload []byte, found bool) {
	var key *jose.JSONWebKey
	for i := range keys {
		if keys[i].Use == "enc" {
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

// fetch gets the keys from the provider, sharing concurrent fetches, at
// most as often as the bucket allows.
func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	now := k.now()
	if d := now.Sub(k.refill); d > 0 {
		k.tokens = min(keyFetchBurst, k.tokens+float64(d)/float64(keyFetchRefill))
		k.refill = now
	}
	if k.tokens < 1 {
		keys := k.keys
		k.mu.Unlock()
		if keys == nil {
			return nil, errKeysUnavailable
		}
		return keys, nil // too soon to ask again: use what we have
	}
	k.tokens--
	k.mu.Unlock()

	v, err, _ := k.group.Do("", func() (any, error) {
		// One caller's cancellation must not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		keys, err := k.get(ctx)
		k.mu.Lock()
		defer k.mu.Unlock()
		k.failing = err != nil
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errKeysUnavailable, err)
		}
		k.keys = keys
		return keys, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]jose.JSONWebKey), nil
}

// fetchFailing reports whether the last fetch of the keys failed.
func (k *keySet) fetchFailing() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.failing
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
