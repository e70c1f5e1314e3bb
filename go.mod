module github.com/gatehouse/auth

go 1.26.0

require (
	github.com/coreos/go-oidc/v3 v3.21.0
	github.com/go-jose/go-jose/v4 v4.1.9
	github.com/gorilla/securecookie v1.1.2
	golang.org/x/oauth2 v0.38.0
	golang.org/x/sync v0.25.0
)
