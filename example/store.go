package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/redisstore"
)

// backchannelPath is where the example receives the provider's logout
// tokens (OpenID Connect Back-Channel Logout 1.0) when it keeps sessions in
// a store: register PUBLIC_URL + backchannelPath at the provider as the
// client's back-channel logout URI.
const backchannelPath = "/auth/backchannel-logout"

// sessionStore returns the store named by AUTH_SESSION_STORE, and a
// function that releases it once the server has stopped:
//
//	cookie (or unset)  nil: the whole session is sealed in the cookie
//	memory             auth.MemoryStore: sessions live as long as the process
//	redis              redisstore on REDIS_URL, such as redis://127.0.0.1:6379/0
//
// Any other value is an error, and so is a Redis that does not answer: the
// example fails at startup rather than at the first login.
func sessionStore(ctx context.Context, getenv func(string) string, log *slog.Logger) (auth.Store, func(), error) {
	switch kind := getenv("AUTH_SESSION_STORE"); kind {
	case "", "cookie":
		return nil, func() {}, nil
	case "memory":
		log.Info("sessions are kept in memory: they end when this process stops")
		return auth.NewMemoryStore(auth.MemoryStoreOptions{}), func() {}, nil
	case "redis":
		return redisStore(ctx, getenv("REDIS_URL"), log)
	default:
		return nil, nil, fmt.Errorf("AUTH_SESSION_STORE must be cookie, memory or redis, got %q", kind)
	}
}

// redisStore connects to the Redis at rawURL and returns a redisstore on
// it, and a function that closes the connection.
func redisStore(ctx context.Context, rawURL string, log *slog.Logger) (auth.Store, func(), error) {
	if rawURL == "" {
		return nil, nil, errors.New("AUTH_SESSION_STORE=redis needs REDIS_URL, such as redis://127.0.0.1:6379/0")
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		// url.Parse quotes the whole URL in its errors, password included.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, nil, fmt.Errorf("REDIS_URL is not a redis:// or rediss:// URL: %w", err)
	}
	if opt.Network != "tcp" {
		return nil, nil, fmt.Errorf("REDIS_URL: want a redis:// or rediss:// URL, not %s", opt.Network)
	}
	// A UniversalClient, as in the README: with several Addrs it would
	// talk to a Cluster, with MasterName to Sentinel.
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:      []string{opt.Addr},
		DB:         opt.DB,
		Username:   opt.Username,
		Password:   opt.Password,
		TLSConfig:  opt.TLSConfig,
		Protocol:   opt.Protocol,
		ClientName: opt.ClientName,
		// Fail fast when Redis is down: protected routes answer 503.
		// The URL's dial_timeout, read_timeout and write_timeout win.
		DialTimeout:  cmp.Or(opt.DialTimeout, time.Second),
		ReadTimeout:  cmp.Or(opt.ReadTimeout, 500*time.Millisecond),
		WriteTimeout: cmp.Or(opt.WriteTimeout, 500*time.Millisecond),
	})
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, nil, fmt.Errorf("AUTH_SESSION_STORE=redis: Redis at %s does not answer: %w", opt.Addr, err)
	}
	log.Info("sessions are kept in Redis", "addr", opt.Addr, "db", opt.DB)
	return redisstore.New(rdb, redisstore.Options{}), func() { rdb.Close() }, nil
}
