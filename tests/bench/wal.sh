#!/usr/bin/env bash
# Benchmark (not a test): continuous archiving and point-in-time restore,
# pgarchive against pgBackRest (Debian's), side by side on one machine and
# one workload. Usage: sudo tests/bench/wal.sh
#
# For each side a fresh PostgreSQL 15 cluster (fsync=off, on disk) archives
# its WAL while pgbench -i -s BENCH_SCALE (default 170: a little over 2 GiB of WAL)
# runs, after a base backup taken first:
#   pgbackrest-posix  archive-push to a posix repository, repo1-cipher-type=aes-256-cbc
#   pgbackrest-s3     archive-push to MinIO as S3 (TLS), aes-256-cbc
#   pgarchive         wal-push to the union of two MinIO servers (TLS)
# and prints: segments per second (all segments / time from the workload's
# start until the archiver caught up), the largest lag of pg_stat_archiver
# behind the current WAL segment (sampled each second), the peak RSS of one
# archive_command, then the time to restore the base backup and replay all
# the WAL into a new directory until the server is promoted
# (pgbackrest restore vs pgarchive restore-cluster --latest).
# Targets (issue 14): pgarchive to two upstreams at least as fast as
# pgBackRest to one; restore within 1.2x of it.
# BENCH_SIDES="pgbackrest-posix pgbackrest-s3 pgarchive" picks the sides;
# BENCH_PUSH_ARGS adds wal-push flags (e.g. "--compression none").
# Needs: go, minio, openssl, pgbackrest, PostgreSQL 15, runuser, GNU time,
# python3; installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
scale=${BENCH_SCALE:-170}
sides=${BENCH_SIDES:-pgbackrest-posix pgbackrest-s3 pgarchive}
pgbin=${BENCH_PG_BIN:-/usr/lib/postgresql/15/bin}
export GOBIN="${GOBIN:-$(go env GOPATH)/bin}"
export PATH="$GOBIN:$PATH"
command -v minio >/dev/null || go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
command -v rclone >/dev/null || go install github.com/rclone/rclone@v1.75.0
command -v age-keygen >/dev/null || go install filippo.io/age/cmd/...@v1.3.2
command -v pgbackrest >/dev/null && command -v openssl >/dev/null && [ -x /usr/bin/time ] ||
  { apt-get update -qq; apt-get install -y -qq pgbackrest openssl time >/dev/null; }

work=$(mktemp -d /var/tmp/pgarchive-bench-wal.XXXXXX)
chmod 755 "$work"
pids=()
pg_stop() { # pg_stop DATADIR
  [ -f "$1/postmaster.pid" ] && runuser -u postgres -- "$pgbin/pg_ctl" -D "$1" -w -m immediate stop >/dev/null 2>&1 || true
}
cleanup() {
  for d in "$work"/*/data "$work"/*/restored; do [ -d "$d" ] && pg_stop "$d"; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
as_pg() { runuser -u postgres -- "$@"; }
now() { date +%s.%N; }
since() { awk "BEGIN{printf \"%.1f\", $(now) - $1}"; }

echo "== building pgarchive"
mkdir -p "$work/bin" && go build -o "$work/bin/pgarchive" ./cmd/pgarchive

# One self-signed certificate for every MinIO: pgBackRest speaks S3 over TLS
# only; rclone trusts the certificate through SSL_CERT_FILE.
mkdir -p "$work/certs"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$work/certs/private.key" -out "$work/certs/public.crt" 2>/dev/null
chmod 644 "$work/certs/"*
export SSL_CERT_FILE=$work/certs/public.crt
declare -A mport
for s in a b c; do
  mport[$s]=$(free_port)
  mkdir -p "$work/minio-$s"
  MINIO_ROOT_USER=benchuser MINIO_ROOT_PASSWORD=benchpassword MINIO_CI_CD=1 \
    minio server "$work/minio-$s" --certs-dir "$work/certs" --address "127.0.0.1:${mport[$s]}" \
    --console-address "127.0.0.1:$(free_port)" >"$work/minio-$s.log" 2>&1 &
  pids+=($!)
done
conf=$work/rclone.conf
for s in a b c; do
  printf '[m%s]\ntype = s3\nprovider = Minio\nendpoint = https://127.0.0.1:%d\naccess_key_id = benchuser\nsecret_access_key = benchpassword\nregion = us-east-1\n' \
    "$s" "${mport[$s]}" >> "$conf"
done
printf '[archive-target-database]\ntype = union\nupstreams = ma:wal mb:wal\naction_policy = all\ncreate_policy = all\nsearch_policy = ff\n' >> "$conf"
chmod 644 "$conf"
for s in a b c; do
  bucket=$([ "$s" = c ] && echo pgbr || echo wal)
  for i in $(seq 100); do
    rclone --config "$conf" mkdir "m$s:$bucket" 2>/dev/null && break
    [ "$i" = 100 ] && { cat "$work/minio-$s.log"; exit 1; }
    sleep 0.3
  done
done
age_id=$work/id.txt
age-keygen -o "$age_id" 2>/dev/null
chmod 644 "$age_id"
recip=$(age-keygen -y "$age_id")

pgbr_conf() { # pgbr_conf SIDE DIR -> pgbackrest.conf
  local side=$1 dir=$2
  {
    echo "[global]"
    echo "repo1-cipher-type=aes-256-cbc"
    echo "repo1-cipher-pass=bench-cipher-passphrase"
    echo "repo1-retention-full=2"
    echo "log-level-console=warn"
    echo "log-level-file=off"
    echo "lock-path=$dir/lock"
    echo "spool-path=$dir/spool"
    echo "start-fast=y"
    if [ "$side" = pgbackrest-s3 ]; then
      echo "repo1-type=s3"
      echo "repo1-path=/repo"
      echo "repo1-s3-endpoint=127.0.0.1"
      echo "repo1-storage-port=${mport[c]}"
      echo "repo1-s3-bucket=pgbr"
      echo "repo1-s3-region=us-east-1"
      echo "repo1-s3-key=benchuser"
      echo "repo1-s3-key-secret=benchpassword"
      echo "repo1-s3-uri-style=path"
      echo "repo1-storage-verify-tls=n"
    else
      echo "repo1-path=$dir/repo"
    fi
    echo "[bench]"
    echo "pg1-path=$dir/data"
    echo "pg1-socket-path=$dir/sock"
    echo "pg1-port=5432"
  } > "$dir/pgbackrest.conf"
}

# start_pg DIR ARCHIVE_COMMAND: a fresh cluster archiving with it.
start_pg() {
  local dir=$1 cmd=$2
  as_pg "$pgbin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C >/dev/null
  cat >> "$dir/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$dir/sock'
port = 5432
fsync = off
synchronous_commit = off
wal_level = replica
archive_mode = on
archive_command = '$cmd'
max_wal_size = 4GB
checkpoint_timeout = 30min
EOF
  as_pg "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
}
psql_q() { as_pg "$pgbin/psql" -X -A -t -h "$1/sock" -p 5432 -U postgres -d postgres -c "$2"; }
segno() { local n=$1; echo $(( 16#${n:8:8} * 256 + 16#${n:16:8} )); }

# run_side SIDE: archive the workload, then restore it; prints one row.
declare -A rate lag rss restore walmb
run_side() {
  local side=$1 dir=$work/$1
  mkdir -p "$dir/sock" "$dir/lock" "$dir/spool" "$dir/repo" && chown -R postgres "$dir"
  local timef=$dir/rss.txt
  : > "$timef"; chown postgres "$timef"
  local push
  case $side in
    pgarchive)
      push="/usr/bin/time -f %M -a -o $timef $work/bin/pgarchive --rclone-config $conf --recipient $recip --log-target stderr wal-push ${BENCH_PUSH_ARGS:-} %p" ;;
    *)
      pgbr_conf "$side" "$dir"
      push="/usr/bin/time -f %M -a -o $timef pgbackrest --config=$dir/pgbackrest.conf --stanza=bench archive-push %p" ;;
  esac
  start_pg "$dir" "$push"
  if [ "$side" = pgarchive ] && [[ " ${BENCH_PUSH_ARGS:-} " == *" --async "* ]]; then
    # The uploader as a unit would run it, to measure its memory too.
    as_pg env SSL_CERT_FILE="$SSL_CERT_FILE" /usr/bin/time -f %M -o "$dir/uploader.rss" "$work/bin/pgarchive" --rclone-config "$conf" \
      --recipient "$recip" --log-target stderr wal-push --uploader --pgdata "$dir/data" --uploader-idle 3s ${BENCH_PUSH_ARGS:-} 2>"$dir/uploader.log" &
    uploader=$!
  fi
  # The base backup, before the workload.
  case $side in
    pgarchive)
      "$work/bin/pgarchive" --rclone-config "$conf" --recipient "$recip" --log-target stderr basebackup --compression lz4 \
        --connection "host=$dir/sock port=5432 user=postgres dbname=postgres" 2>"$dir/base.log" || { cat "$dir/base.log"; exit 1; } ;;
    *)
      as_pg pgbackrest --config="$dir/pgbackrest.conf" --stanza=bench stanza-create >/dev/null
      as_pg pgbackrest --config="$dir/pgbackrest.conf" --stanza=bench --type=full backup >/dev/null ;;
  esac
  local lsn0 start maxlag=0 cur last
  lsn0=$(psql_q "$dir" "SELECT pg_current_wal_lsn()")
  start=$(now)
  as_pg "$pgbin/pgbench" -i -s "$scale" -q -h "$dir/sock" -p 5432 -U postgres postgres >"$dir/pgbench.log" 2>&1 &
  local bench=$!
  while kill -0 "$bench" 2>/dev/null; do
    cur=$(psql_q "$dir" "SELECT pg_walfile_name(pg_current_wal_lsn())")
    last=$(psql_q "$dir" "SELECT coalesce(last_archived_wal, '000000010000000000000001') FROM pg_stat_archiver")
    [ "${#last}" = 24 ] && (( $(segno "$cur") - $(segno "$last") > maxlag )) && maxlag=$(( $(segno "$cur") - $(segno "$last") ))
    sleep 1
  done
  wait "$bench" || { cat "$dir/pgbench.log"; exit 1; }
  local final
  final=$(psql_q "$dir" "SELECT pg_walfile_name(pg_switch_wal())")
  walmb[$side]=$(psql_q "$dir" "SELECT ((pg_current_wal_lsn() - '$lsn0') / 1048576)::bigint")
  until [ "$(psql_q "$dir" "SELECT coalesce(last_archived_wal, '') >= '$final' FROM pg_stat_archiver")" = t ]; do sleep 0.2; done
  local took segs
  took=$(since "$start")
  segs=$(( $(segno "$final") - $(segno "$(psql_q "$dir" "SELECT pg_walfile_name('$lsn0')")") + 1 ))
  rate[$side]=$(awk "BEGIN{printf \"%.1f\", $segs / $took}")
  lag[$side]=$maxlag
  rss[$side]=$(( $(sort -n "$timef" | tail -1) / 1024 ))
  if [ -n "${uploader:-}" ]; then
    wait "$uploader" || true
    rss[$side]="${rss[$side]} (uploader $(( $(tail -1 "$dir/uploader.rss") / 1024 )) MiB)"
    uploader=
  fi
  local failed
  failed=$(psql_q "$dir" "SELECT failed_count FROM pg_stat_archiver")
  echo "  $side: $segs segments (${walmb[$side]} MiB of WAL) archived in $took s: ${rate[$side]} segments/s; largest lag ${lag[$side]} segments; peak RSS of one push ${rss[$side]} MiB; $failed failed pushes"
  pg_stop "$dir/data"

  # Restore: base backup + every WAL segment, until promoted.
  local t0=$(now) target=$dir/restored
  case $side in
    pgarchive)
      as_pg mkdir "$target"
      as_pg env SSL_CERT_FILE="$SSL_CERT_FILE" "$work/bin/pgarchive" --rclone-config "$conf" --log-target stderr \
        restore-cluster --latest --target-dir "$target" -i "$age_id" 2>"$dir/restore.log" || { cat "$dir/restore.log"; exit 1; } ;;
    *)
      as_pg mkdir -p "$target"
      as_pg pgbackrest --config="$dir/pgbackrest.conf" --stanza=bench --pg1-path="$target" restore >/dev/null ;;
  esac
  local unpacked
  unpacked=$(since "$t0")
  as_pg env SSL_CERT_FILE="$SSL_CERT_FILE" "$pgbin/pg_ctl" -D "$target" -l "$dir/restored.log" -o "-c unix_socket_directories=$dir/sock -c archive_mode=off" -w -t 3600 start >/dev/null ||
    { tail -20 "$dir/restored.log"; exit 1; }
  until [ "$(psql_q "$dir" "SELECT pg_is_in_recovery()")" = f ]; do sleep 0.2; done
  restore[$side]=$(since "$t0")
  local rows
  rows=$(psql_q "$dir" "SELECT count(*) FROM pgbench_accounts")
  echo "  $side: restored in ${restore[$side]} s (base backup unpacked in $unpacked s, then WAL replay); pgbench_accounts has $rows rows"
  [ "$rows" = "$((scale * 100000))" ] || { echo "  wrong row count"; exit 1; }
  pg_stop "$target"
  rm -rf "$target" "$dir/data"
}

echo "== pgbench -i -s $scale with archiving on, $(nproc) cores; base backup first, then restore of everything"
for side in $sides; do run_side "$side"; done
r() { awk "BEGIN{printf \"%.2f\", $1 / $2}"; }
if [[ " $sides " == *" pgarchive "* ]]; then
  for side in $sides; do
    [ "$side" = pgarchive ] && continue
    echo "pgarchive (2 upstreams) / $side (1 repository) archiving rate: $(r "${rate[pgarchive]}" "${rate[$side]}")x (target >= 1)"
    echo "pgarchive restore-cluster / $side restore time:             $(r "${restore[pgarchive]}" "${restore[$side]}")x (target <= 1.2)"
  done
fi
