# The files the package is built from, relative to the repository root.
# One list for package.nix and update-vendor-hash.sh: the vendor hash is only
# reproducible if both vendor the same tree, and leaving out tests/, docs/ and
# .ci/ keeps edits there from rebuilding the package. tests/harness is in
# because some internal packages' tests start a real PostgreSQL with it, and
# `go mod vendor` resolves test imports too (doCheck stays off: the sandbox
# has no PostgreSQL).
[
  "go.mod"
  "go.sum"
  "cmd"
  "internal"
  "tests/harness"
]
