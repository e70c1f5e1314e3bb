package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/internal/demo"
)

// clientSettings reads how the client proves itself and how the provider
// answers: AUTH_CLIENT_KEY_FILE, a PEM private key (RSA or EC, and the
// key's certificate after it for providers that want one, such as Entra
// ID), with which the client signs private_key_jwt assertions and needs no
// secret; AUTH_CLIENT_KEY_ID, the key's ID at the provider (default: its
// RFC 7638 thumbprint); and AUTH_RESPONSE_MODE, query or form_post (which
// needs an https PUBLIC_URL).
func clientSettings(getenv func(string) string, env *demo.Env, cfg *auth.Config) error {
	cfg.ResponseMode = getenv("AUTH_RESPONSE_MODE")
	file, kid := getenv("AUTH_CLIENT_KEY_FILE"), getenv("AUTH_CLIENT_KEY_ID")
	switch {
	case file == "" && kid != "":
		return errors.New("AUTH_CLIENT_KEY_ID needs AUTH_CLIENT_KEY_FILE")
	case file == "":
		return nil
	case env.Provider != nil:
		return errors.New("AUTH_CLIENT_KEY_FILE needs AUTH_ISSUER: the embedded provider knows only its client secret")
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("AUTH_CLIENT_KEY_FILE: %w", err)
	}
	key, cert, err := auth.ParseClientKey(pem)
	if err != nil {
		return fmt.Errorf("AUTH_CLIENT_KEY_FILE %s: %w", file, err)
	}
	cfg.ClientKey, cfg.ClientCertificate, cfg.ClientKeyID = key, cert, kid
	return nil
}
