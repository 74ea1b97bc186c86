#!/usr/bin/env bash
# Benchmark (not a test): pgarchive archive against the baselines in
# ../shared/baselines, side by side in one run on the same input, printing
# wall time, peak RSS and ratios.  Usage: sudo tests/bench/archive.sh [SIZE_MIB]
#   BENCH_MINIO=0 skips the MinIO comparison, BENCH_BIG=0 the 8 GiB RSS run,
#   BENCH_SIGN_RUNS=N sets the runs per side of the signing comparison (7).
# Needs: go, gpg, age (v1.3.2), rclone CLI v1.75.0, minio, GNU time; installs
# the Go tools into GOBIN if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
shared=${SHARED:-$repo/../shared}
size_mib=${1:-1024}
export GOBIN="${GOBIN:-$(go env GOPATH)/bin}"
export PATH="$GOBIN:$PATH"
command -v rclone >/dev/null || go install github.com/rclone/rclone@v1.75.0
command -v age >/dev/null || go install filippo.io/age/cmd/...@v1.3.2
command -v gpg >/dev/null && [ -x /usr/bin/time ] || { apt-get update -qq; apt-get install -y -qq gnupg time >/dev/null; }

work=$(mktemp -d /dev/shm/pgarchive-bench.XXXXXX)
disk=$(mktemp -d /var/tmp/pgarchive-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work" "$disk"; }
trap cleanup EXIT

go build -o "$work/pgarchive" ./cmd/pgarchive
age-keygen -o "$work/id.txt" 2>/dev/null
age-keygen -y "$work/id.txt" > "$work/recipients.txt"
echo "bench passphrase" > "$work/pass.txt"
# The baselines' input: incompressible random bytes. It is no gzip stream,
# so the pgarchive rows pass --skip-dump-check (the pipeline is what they
# compare); the check's own cost is measured below, on a real gzip'd dump.
head -c "$((size_mib << 20))" /dev/urandom > "$work/db1.sql.gz"
nocheck=--skip-dump-check

union() { # union NAME DIR... -> config section
  printf '[%s]\ntype = union\nupstreams = %s\naction_policy = all\ncreate_policy = all\nsearch_policy = ff\n' "$1" "${*:2}"
}
conf=$work/rclone.conf
union archive-target-database "$work/up-a" "$work/up-b" > "$conf"
mkdir -p "$work/up-a" "$work/up-b"
reset_up() { rm -rf "$work/up-a" "$work/up-b"; mkdir -p "$work/up-a" "$work/up-b"; }

# measure NAME CMD...: best wall time (s) and its peak RSS (MiB) over 2 runs.
declare -A wall rss
measure() {
  local name=$1; shift
  local best="" bestrss=""
  for i in 1 2; do
    reset_up
    sync
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
    read -r w r < "$work/time"
    if [ -z "$best" ] || awk "BEGIN{exit !($w < $best)}"; then best=$w bestrss=$r; fi
  done
  wall[$name]=$best rss[$name]=$((bestrss / 1024))
  printf '%-28s %8.2f s %6d MiB\n' "$name" "$best" "${rss[$name]}"
}

in=$work/db1.sql.gz
echo "== ${size_mib} MiB incompressible input, union of two tmpfs folders, $(nproc) cores"
measure "cat | tee"             sh -c "cat '$in' | tee '$work/up-a/x' > '$work/up-b/x'"
measure "cat|tee + 2x sha256sum" sh -c "sha256sum '$in' >/dev/null & sha256sum '$in' >/dev/null & cat '$in' | tee '$work/up-a/x' > '$work/up-b/x'; wait"
measure "seed-pipeline.sh"      bash "$shared/baselines/seed-pipeline.sh" "$in" "$work/pass.txt" "$conf" archive-target-database:/db1/ "$disk"
measure "age-rcat.sh"           bash "$shared/baselines/age-rcat.sh" "$in" "$work/recipients.txt" "$conf" archive-target-database:db1/x.age
measure "pgarchive"             "$work/pgarchive" --log-target stderr --rclone-config "$conf" -R "$work/recipients.txt" archive --database db1 --file "$in" $nocheck
ratio() { awk "BEGIN{printf \"%.2f\", ${wall[$1]} / ${wall[$2]}}"; }
echo "pgarchive / cat|tee:               $(ratio pgarchive 'cat | tee')x (target <= 1.5)"
echo "pgarchive / cat|tee+2x sha256sum:  $(ratio pgarchive 'cat|tee + 2x sha256sum')x (the SHA-256 the manifest needs, twice)"
echo "seed-pipeline / pgarchive:         $(ratio seed-pipeline.sh pgarchive)x faster (target >= 7)"
echo "age-rcat / pgarchive:              $(ratio age-rcat.sh pgarchive)x faster (target ~2)"
echo "pgarchive peak RSS:                ${rss[pgarchive]} MiB (target <= 64)"

# Signing: the same archive with --signing-key, unsigned and signed runs
# alternating so drift hits both alike; medians of BENCH_SIGN_RUNS each.
ssh-keygen -q -t ed25519 -N "" -f "$work/signing_key"
runs=${BENCH_SIGN_RUNS:-7}
: > "$work/unsigned.t"; : > "$work/signed.t"
for i in $(seq "$runs"); do
  for mode in unsigned signed; do
    reset_up; sync
    extra=(); [ "$mode" = signed ] && extra=(--signing-key "$work/signing_key")
    /usr/bin/time -f "%e" -a -o "$work/$mode.t" "$work/pgarchive" --log-target stderr --rclone-config "$conf" -R "$work/recipients.txt" \
      "${extra[@]}" archive --database db1 --file "$in" $nocheck >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
  done
done
median() { sort -n "$1" | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mu=$(median "$work/unsigned.t") ms=$(median "$work/signed.t")
printf '%-28s %8.2f s (median of %d)\n' "pgarchive unsigned" "$mu" "$runs" "pgarchive --signing-key" "$ms" "$runs"
echo "signed / unsigned:                 $(awk "BEGIN{printf \"%.3f\", $ms / $mu}")x (target < 1.02)"

# The dump check (on by default): a gzip'd text dump (base64 lines, ~1.3x
# compressible) ending as pg_dump ends one, archived with and without
# --skip-dump-check, alternating, medians. The check gunzips on another core.
gzd=$work/text.sql.gz
{ head -c "$((size_mib * 3 / 4 << 20))" /dev/urandom | base64 -w 76; printf '\n--\n-- PostgreSQL database dump complete\n--\n'; } | gzip -1 > "$gzd"
: > "$work/check.t"; : > "$work/skip.t"
for i in $(seq "$runs"); do
  for mode in check skip; do
    reset_up; sync
    extra=(); [ "$mode" = skip ] && extra=(--skip-dump-check)
    /usr/bin/time -f "%e %M" -a -o "$work/$mode.t" "$work/pgarchive" --log-target stderr --rclone-config "$conf" -R "$work/recipients.txt" \
      archive --database db1 --file "$gzd" "${extra[@]}" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
  done
done
mc=$(median "$work/check.t") mk=$(median "$work/skip.t")
rssc=$(awk '{print $2}' "$work/check.t" | sort -n | tail -1)
printf '%-28s %8.2f s (median of %d), %s MiB gzip\n' "pgarchive, dump checked" "$mc" "$runs" "$(($(stat -c %s "$gzd") >> 20))"
printf '%-28s %8.2f s (median of %d)\n' "pgarchive --skip-dump-check" "$mk" "$runs"
echo "checked / unchecked:               $(awk "BEGIN{printf \"%.3f\", $mc / $mk}")x; peak RSS checked $((rssc / 1024)) MiB"

if [ "${BENCH_BIG:-1}" != 0 ]; then
  echo "== peak RSS vs input size (stdin, folders on disk)"
  union big "$disk/a" "$disk/b" > "$work/big.conf"
  for gib in 1 8; do
    rm -rf "$disk/a" "$disk/b"
    /usr/bin/time -f "%e %M" -o "$work/time" sh -c "head -c $((gib << 30)) /dev/zero | '$work/pgarchive' --log-target stderr --rclone-config '$work/big.conf' --remote big: -R '$work/recipients.txt' archive --database big --file - --skip-dump-check" 2>"$work/err" || { cat "$work/err"; exit 1; }
    read -r w r < "$work/time"
    printf '%d GiB: %6.1f s, peak RSS %d MiB\n' "$gib" "$w" "$((r / 1024))"
  done
  rm -rf "$disk/a" "$disk/b"
fi

if [ "${BENCH_MINIO:-1}" != 0 ]; then
  echo "== two MinIO upstreams on tmpfs"
  for s in a b; do
    port=$((19000 + RANDOM % 1000))
    mkdir -p "$work/minio-$s"
    MINIO_ROOT_USER=benchuser MINIO_ROOT_PASSWORD=benchpassword MINIO_CI_CD=1 \
      minio server "$work/minio-$s" --address "127.0.0.1:$port" --console-address "127.0.0.1:$((port + 1000))" >"$work/minio-$s.log" 2>&1 &
    pids+=($!)
    printf '[m%s]\ntype = s3\nprovider = Minio\nendpoint = http://127.0.0.1:%d\naccess_key_id = benchuser\nsecret_access_key = benchpassword\nregion = us-east-1\n' "$s" "$port" >> "$conf"
  done
  union s3union ma:bench mb:bench >> "$conf"
  for s in a b; do
    for _ in $(seq 100); do rclone --config "$conf" mkdir "m$s:bench" 2>/dev/null && break; sleep 0.2; done
  done
  measure "rclone copy (MinIO)" rclone --config "$conf" copy --ignore-times "$in" s3union:copy/
  measure "pgarchive (MinIO)" "$work/pgarchive" --log-target stderr --rclone-config "$conf" --remote s3union: -R "$work/recipients.txt" archive --database db1 --file "$in" $nocheck
  echo "pgarchive / rclone copy on MinIO:  $(ratio 'pgarchive (MinIO)' 'rclone copy (MinIO)')x (target <= 1.15)"
fi
