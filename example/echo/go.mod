module github.com/gatehouse/auth/example/echo

go 1.26.0

require (
	github.com/gatehouse/auth v0.0.0-00010101000000-000000000000
	github.com/labstack/echo/v5 v5.4.4
)

require (
	github.com/coreos/go-oidc/v3 v3.21.0 // indirect
	github.com/go-jose/go-jose/v4 v4.1.9 // indirect
	github.com/gorilla/securecookie v1.1.2 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/oauth2 v0.38.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
)

replace github.com/gatehouse/auth => ../..
