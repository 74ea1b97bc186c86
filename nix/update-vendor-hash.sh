#!/usr/bin/env bash
# Recompute buildGoModule's vendorHash for nix/package.nix the way its
# go-modules derivation does: `go mod vendor` on the package's source subset
# (nix/source.nix), then the NAR hash of the vendor directory.
#
#   nix/update-vendor-hash.sh           rewrite vendorHash in nix/package.nix
#   nix/update-vendor-hash.sh --check   exit 1 if it is stale (CI)
#   nix/update-vendor-hash.sh --print   print the fresh hash only
#
# Needs go and Debian's nix-bin (or any Nix >= 2.4); no nixpkgs. Go 1.25 and
# 1.26 produce byte-identical vendor trees here, so the local Go is fine.
set -euo pipefail

mode=${1:-update}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pkg=$root/nix/package.nix

# The NAR hash, which is what a recursive fixed-output derivation compares.
nixcmd=(nix --extra-experimental-features nix-command)

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

paths=$(nix-instantiate --eval --strict --json "$root/nix/source.nix" | tr -d '[]"' | tr ',' ' ')
(cd "$root" && cp -a --parents $paths "$tmp/")
rm -rf "$tmp/vendor"

# Neutralise local settings the sandbox would not have (workspaces, -mod=...).
(cd "$tmp" && GOWORK=off GOFLAGS= GO111MODULE=on go mod vendor && mkdir -p vendor)
fresh=$("${nixcmd[@]}" hash path "$tmp/vendor")

current=$(sed -n 's/^ *vendorHash = "\(sha256-[^"]*\)";.*/\1/p' "$pkg")

case $mode in
--print) echo "$fresh" ;;
--check)
  if [ "$current" != "$fresh" ]; then
    echo "nix/package.nix vendorHash is stale: it says ${current:-nothing}, go.mod/go.sum need $fresh" >&2
    echo "fix: nix/update-vendor-hash.sh" >&2
    exit 1
  fi
  echo "vendorHash $fresh is current"
  ;;
update)
  if [ -z "$current" ]; then
    echo "no 'vendorHash = \"sha256-...\";' line in $pkg" >&2
    exit 1
  fi
  sed -i "s|^\( *vendorHash = \"\)sha256-[^\"]*\(\";\)|\1$fresh\2|" "$pkg"
  echo "vendorHash = $fresh"
  ;;
*) echo "usage: $0 [--check|--print]" >&2; exit 2 ;;
esac
