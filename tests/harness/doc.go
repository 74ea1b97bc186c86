// Package harness starts the real components pgarchive's integration tests
// run against — a scratch PostgreSQL 15 cluster with nixpkgs-style dumps,
// MinIO servers, a private systemd-journald, the stock age CLI — and tears
// them down with t.Cleanup, even when a test fails.
//
// # What CI must install (put these in .ci/run)
//
// Debian 12 packages (run `apt-get update` once first):
//
//	apt-get install -y postgresql-15 zstd gzip openssh-client systemd util-linux bsdutils mount
//
// postgresql-15 brings initdb/postgres/pg_dump/pg_isready/psql (in
// /usr/lib/postgresql/15/bin) and the `postgres` user; zstd and gzip compress
// dumps; openssh-client gives ssh-keygen; systemd gives
// /lib/systemd/systemd-journald, journalctl and systemd-cat; util-linux
// gives unshare and runuser; bsdutils gives logger; mount gives mount.
//
// Go-built tools, into /root/go/bin (searched even when not on PATH).
// `go install pkg@version` ignores the current go.mod, so it never changes it:
//
//	GOBIN=/root/go/bin go install filippo.io/age/cmd/...@v1.3.2
//	GOBIN=/root/go/bin go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
//	GOBIN=/root/go/bin go install github.com/minio/mc@v0.0.0-20250313080218-cf909e1063a9
//
// The MinIO build takes ~5.5 min cold on 2 cores (150 MB binary); skip it
// when /root/go/bin/minio already exists; mc (MinIO's client, ~1 min,
// which the prune tests use to create an append-only user) likewise. age v1.3.2 installs age,
// age-keygen, age-inspect and age-plugin-batchpass (needed for unattended
// passphrase use, see age.go).
//
// # Missing tools and privileges
//
// Need, Tool and NeedRoot fail the test with the install command when the
// CI environment variable is non-empty, and otherwise skip with a message
// starting "SKIPPED:". Nothing passes silently. The journald helper needs
// root (mount namespaces); PostgreSQL runs as user postgres (or nobody)
// when the tests run as root, and as the current user otherwise.
//
// # Isolation
//
// Every server gets its own temporary directory and free loopback ports;
// PostgreSQL listens on a unix socket only. Children are started with
// Pdeathsig=SIGKILL and their own process group, so a crashed test binary
// does not leave servers running. Nothing here touches rclone's global
// configuration: rclone.conf files are plain text written to temp dirs and
// the S3 inspection client (s3.go) is self-contained.
package harness
