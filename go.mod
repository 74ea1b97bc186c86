module github.com/pgarchive/pgarchive

go 1.25.0

require (
	filippo.io/age v1.3.2
	golang.org/x/crypto v0.55.0
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	filippo.io/hpke v0.4.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)
