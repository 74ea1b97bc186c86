#!/usr/bin/env bash
# Benchmark (not a test): pgarchive's read side against the stock tools, side
# by side in one run, printing wall time, peak RSS and ratios.
# Usage: sudo tests/bench/read.sh
#   1. restore --output FILE  vs  age -d -i KEY OBJECT | gunzip > FILE, on the
#      same stored object (a union of one tmpfs folder), a gzip -6'd pg_dump -C
#      of BENCH_GZ_MIB MiB (default 1024) with ~3x compressible rows;
#   2. restore --into  vs  gunzip -c | psql --single-transaction, into a fresh
#      database of a scratch PostgreSQL 15 cluster (fsync=off) on tmpfs;
#   3. list (table and --json)  vs  rclone lsjson -R, over BENCH_ARCHIVES;
#      report --html vs list (target: within 2x); and, without a target,
#      status, prune --dry-run and heal --dry-run --quick
#      (default 10000) archives on two MinIO servers on tmpfs.
# Rows of one part run round-robin, BENCH_REPS (3), BENCH_INTO_REPS (3) and
#   4. restore --into of a custom-format archive with --jobs 2  vs  pg_restore
#      -j 2 of the same dump file, and vs restore --into of the plain-SQL
#      archive of the same database (pgbench -i -s BENCH_PGBENCH_SCALE, default 400:
#      a plain-SQL load of about a minute on 2 cores).
# BENCH_LIST_REPS (3) times each; the verdict uses the ratio of the medians,
# and the median of per-round ratios is shown beside it. BENCH_RESTORE=0,
# BENCH_INTO=0, BENCH_LIST=0, BENCH_FORMATS=0 skip a part, BENCH_BREAKDOWN=0 the component rows.
# BENCH_CACHE=DIR keeps the generated dump in DIR for the next run.
# Needs: go, gzip, age (v1.3.2), rclone CLI v1.75.0, minio, GNU time,
# PostgreSQL 15 (BENCH_PG_BIN, default /usr/lib/postgresql/15/bin), runuser,
# python3 (to pick free ports); installs the Go tools into GOBIN if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
gz_mib=${BENCH_GZ_MIB:-1024}
n_archives=${BENCH_ARCHIVES:-10000}
reps=${BENCH_REPS:-3} into_reps=${BENCH_INTO_REPS:-3} list_reps=${BENCH_LIST_REPS:-3}
pgbin=${BENCH_PG_BIN:-/usr/lib/postgresql/15/bin}
export GOBIN="${GOBIN:-$(go env GOPATH)/bin}"
export PATH="$GOBIN:$PATH"
command -v rclone >/dev/null || go install github.com/rclone/rclone@v1.75.0
command -v age >/dev/null || go install filippo.io/age/cmd/...@v1.3.2
command -v minio >/dev/null || go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
[ -x /usr/bin/time ] || { apt-get update -qq; apt-get install -y -qq time >/dev/null; }

work=$(mktemp -d /dev/shm/pgarchive-bench-read.XXXXXX)
pgdir=""
pids=()
cleanup() {
  if [ -n "$pgdir" ] && [ -f "$pgdir/data/postmaster.pid" ]; then
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -w -m immediate stop >/dev/null 2>&1 || true
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work" ${pgdir:+"$pgdir"}
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
union() { # union NAME UPSTREAM... -> config section
  printf '[%s]\ntype = union\nupstreams = %s\naction_policy = all\ncreate_policy = all\nsearch_policy = ff\n' "$1" "${*:2}"
}
ratio() { awk "BEGIN{printf \"%.2f\", $1 / $2}"; }
mib() { echo $(($1 / 1024)); }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }

echo "== building"
mkdir -p "$work/bin"
go build -o "$work/bin/pgarchive" ./cmd/pgarchive
go build -o "$work/bin/gendump" ./tests/bench/gendump
go build -o "$work/bin/genarchives" ./tests/bench/genarchives
pga=$work/bin/pgarchive
age-keygen -o "$work/id.txt" 2>/dev/null
age-keygen -y "$work/id.txt" > "$work/recipients.txt"
echo "$(nproc) cores, $(awk '{print $1, $2, $3}' /proc/loadavg) load (other jobs on this machine skew absolute figures; compare ratios)"

# A row is a command run with bash -c, its output to /dev/null; pre[] runs
# (untimed) before each of its runs. rounds REPS NAME... runs the rows
# round-robin, reversing the order every other round, so drift on a shared
# machine hits them alike, and records each run's wall time and CPU time
# (user+sys of the row's own processes; servers such as PostgreSQL or MinIO
# are not counted), their medians, and the peak RSS (of the row's largest
# process).
declare -A cmd pre med rss runs cpu
rounds() {
  local n=$1 name i w r u s order; shift
  for ((i = 1; i <= n; i++)); do
    order=("$@")
    if [ $((i % 2)) = 0 ]; then order=(); for name in "$@"; do order=("$name" "${order[@]}"); done; fi
    for name in "${order[@]}"; do
      eval "${pre[$name]:-}"
      /usr/bin/time -f "%e %M %U %S" -o "$work/time" bash -c "${cmd[$name]}" >/dev/null 2>"$work/err" ||
        { echo "$name failed:"; cat "$work/err"; exit 1; }
      read -r w r u s < "$work/time"
      runs[$name]+="$w "
      cpu[$name]+="$(awk "BEGIN{print $u + $s}") "
      if [ "$r" -gt "${rss[$name]:-0}" ]; then rss[$name]=$r; fi
    done
  done
  for name in "$@"; do
    # shellcheck disable=SC2086
    med[$name]=$(median ${runs[$name]})
    # shellcheck disable=SC2086
    printf '  %-36s %8.2f s %7.2f s CPU %5d MiB   (runs: %s)\n' "$name" "${med[$name]}" "$(median ${cpu[$name]})" \
      "$(mib "${rss[$name]}")" "${runs[$name]% }"
  done
}
# paired ROW BASELINE: the median over rounds of ROW's run / BASELINE's run
# in the same round (neighbours in time), "-" without per-round runs.
paired() {
  [ -n "${runs[$1]:-}" ] && [ -n "${runs[$2]:-}" ] || { echo "-"; return; }
  paste <(tr ' ' '\n' <<< "${runs[$1]% }") <(tr ' ' '\n' <<< "${runs[$2]% }") |
    awk '{print $1 / $2}' | sort -g | awk '{v[NR]=$1} END{printf "%.2f", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'
}
# The final table: label, seconds (median), ratio of the medians, median of
# the per-round ratios, target.
table=()
verdict() { # verdict LABEL ROW BASELINE TARGET
  local q; q=$(ratio "${med[$2]}" "${med[$3]}")
  table+=("$(printf '%-46s %8.2f %7.2f %7s   <= %-5s %s' "$1" "${med[$2]}" "$q" "$(paired "$2" "$3")" "$4" \
    "$(awk "BEGIN{print ($q <= $4) ? \"met\" : \"NOT met\"}")")")
}
info() { # info LABEL ROW [BASELINE]: a row without a target
  local q="-"; [ -n "${3:-}" ] && q=$(ratio "${med[$2]}" "${med[$3]}")
  table+=("$(printf '%-46s %8.2f %7s %7s   %-8s' "$1" "${med[$2]}" "$q" "-" "-")")
}

# start_pg: a scratch PostgreSQL 15 cluster on tmpfs, fsync=off; sets
# pgdir, port and psql.
start_pg() {
  pgdir=$(mktemp -d /dev/shm/pgarchive-bench-pg.XXXXXX)
  chown postgres "$pgdir"
  port=$(free_port)
  runuser -u postgres -- "$pgbin/initdb" -D "$pgdir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C >/dev/null
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
    -o "-k $pgdir -c listen_addresses= -p $port -c fsync=off" start >/dev/null
  psql=("$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$pgdir" -p "$port" -U postgres)
  echo "  PostgreSQL $("${psql[@]}" -At -c 'show server_version'), fsync=off, data on tmpfs; shared_buffers $("${psql[@]}" -At -c 'show shared_buffers'), max_wal_size $("${psql[@]}" -At -c 'show max_wal_size')"
}
stop_pg() {
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -w -m fast stop >/dev/null
  rm -rf "$pgdir"
  pgdir=""
}

conf=$work/local.conf
if [ "${BENCH_RESTORE:-1}" != 0 ] || [ "${BENCH_INTO:-1}" != 0 ]; then
  echo "== dump: ${gz_mib} MiB gzip -6 of a pg_dump -C of one table"
  gen=$work/gen
  mkdir -p "$gen"
  cached=${BENCH_CACHE:+$BENCH_CACHE/dump-$gz_mib-$(sha256sum tests/bench/gendump/main.go | cut -c1-12)}
  if [ -n "$cached" ] && [ -f "$cached/body.sql.gz" ]; then
    echo "  from the cache $cached"
    cp "$cached"/* "$gen/"
  else
    start=$(date +%s)
    "$work/bin/gendump" -gz-mib "$gz_mib" -dir "$gen" > "$gen/stats"
    echo "  generated in $(($(date +%s) - start)) s"
    if [ -n "$cached" ]; then mkdir -p "$cached" && cp "$gen"/* "$cached/"; fi
  fi
  # The dump and the baseline's: the same body member; the baseline's head
  # has the CREATE DATABASE, ALTER DATABASE ... OWNER and \connect lines
  # blanked, exactly as pgarchive's rewriter hands them to psql.
  cat "$gen/head-c.sql.gz" "$gen/body.sql.gz" > "$work/bench.sql.gz"
  cat "$gen/head.sql.gz" "$gen/body.sql.gz" > "$work/base.sql.gz"
  rm "$gen/body.sql.gz"
  eval "$(tr ' ' '\n' < "$gen/stats" | grep -E '^(rows|plain_bytes)=')"
  echo "  $(cat "$gen/stats"); dump $(stat -c %s "$work/bench.sql.gz") bytes"

  union archive-target-database "$work/up" > "$conf"
  mkdir -p "$work/up"
  /usr/bin/time -f "%e %M" -o "$work/time" "$pga" --log-target stderr --rclone-config "$conf" -R "$work/recipients.txt" \
    archive --database bench --file "$work/bench.sql.gz" 2>"$work/err" || { cat "$work/err"; exit 1; }
  read -r w r < "$work/time"
  obj=$(echo "$work"/up/bench/bench_*.sql.gz.age)
  echo "  archived in $w s (peak RSS $(mib "$r") MiB): $obj"
  rm "$work/bench.sql.gz" # the archive and base.sql.gz are what the rows read
fi
restore=("$pga" --log-target stderr --rclone-config "$conf" --pg-bin "$pgbin" restore -d bench -i "$work/id.txt")

if [ "${BENCH_RESTORE:-1}" != 0 ]; then
  echo "== 1. restore --output FILE vs age -d | gunzip > FILE (tmpfs), $reps runs each"
  out=$work/out.sql
  # Before each run (untimed) the previous run's output is checked (size)
  # and removed.
  check_out() {
    if [ -f "$out" ]; then
      [ "$(stat -c %s "$out")" = "$plain_bytes" ] || { echo "$out has $(stat -c %s "$out") bytes, want $plain_bytes"; exit 1; }
      rm "$out"
    fi
  }
  cmd["age|gunzip"]="age -d -i '$work/id.txt' '$obj' | gunzip > '$out'"
  cmd["restore --output"]="${restore[*]} --output '$out'"
  pre["age|gunzip"]=check_out pre["restore --output"]=check_out
  rounds "$reps" "age|gunzip" "restore --output"
  check_out
  verdict "restore --output vs age -d | gunzip" "restore --output" "age|gunzip" 1.2
  if [ "${BENCH_BREAKDOWN:-1}" != 0 ]; then
    echo "  components, 1 run each:"
    cmd["age -d >null"]="age -d -i '$work/id.txt' '$obj'"
    cmd["gunzip >null"]="gunzip -c '$work/base.sql.gz'"
    cmd["gunzip >FILE"]="gunzip -c '$work/base.sql.gz' > '$out'"
    cmd["sha256sum of the .sql.gz"]="sha256sum '$work/base.sql.gz'"
    cmd["restore --raw --output FILE"]="${restore[*]} --raw --output '$out'"
    cmd["restore --output - >null"]="${restore[*]} --output -"
    for k in "gunzip >FILE" "restore --raw --output FILE"; do pre[$k]="rm -f '$out'"; done
    rounds 1 "age -d >null" "gunzip >null" "gunzip >FILE" "sha256sum of the .sql.gz" "restore --raw --output FILE" "restore --output - >null"
    rm -f "$out"
    for k in "age -d >null" "gunzip >null" "gunzip >FILE" "sha256sum of the .sql.gz" "restore --raw --output FILE" "restore --output - >null"; do
      info "  $k" "$k" "age|gunzip"
    done
  fi
fi

if [ "${BENCH_INTO:-1}" != 0 ]; then
  echo "== 2. restore --into vs gunzip -c | psql --single-transaction, $into_reps runs each"
  start_pg
  # Both start from no target database and create it from template0 (as
  # pgarchive does), inside the timing. Before each run (untimed) the loaded
  # databases are checked (row count) and dropped, and the cluster is
  # checkpointed, so every load starts from the same state.
  settle() {
    local db
    for db in $("${psql[@]}" -d postgres -At -c "select datname from pg_database where datname like 'bench\_%'"); do
      [ "$("${psql[@]}" -d "$db" -At -c 'select count(*) from public.orders')" = "$rows" ] || { echo "$db: wrong row count"; exit 1; }
      "${psql[@]}" -d postgres -c "DROP DATABASE $db"
    done
    "${psql[@]}" -d postgres -c CHECKPOINT
  }
  cmd["gunzip|psql"]="${psql[*]} -d postgres -c 'CREATE DATABASE bench_base TEMPLATE template0' && gunzip -c '$work/base.sql.gz' | ${psql[*]} --single-transaction -d bench_base"
  cmd["restore --into"]="${restore[*]} --into 'host=$pgdir port=$port user=postgres dbname=bench_copy'"
  pre["gunzip|psql"]=settle pre["restore --into"]=settle
  rounds "$into_reps" "gunzip|psql" "restore --into"
  settle
  verdict "restore --into vs gunzip | psql" "restore --into" "gunzip|psql" 1.1
  stop_pg
fi
rm -rf "$work/up" "$work/base.sql.gz"

if [ "${BENCH_FORMATS:-1}" != 0 ]; then
  scale=${BENCH_PGBENCH_SCALE:-400}
  echo "== 4. restore --into of a custom-format archive --jobs 2 vs pg_restore -j 2, and vs the plain-SQL archive; pgbench -i -s $scale, $into_reps runs each"
  start_pg
  "${psql[@]}" -d postgres -c 'CREATE DATABASE pgb'
  start=$(date +%s)
  "$pgbin/pgbench" -i -q -s "$scale" -h "$pgdir" -p "$port" -U postgres pgb >/dev/null 2>&1
  echo "  pgbench -i -s $scale in $(($(date +%s) - start)) s"
  accounts=$((scale * 100000))
  dump=("$pgbin/pg_dump" -h "$pgdir" -p "$port" -U postgres -C pgb)
  "${dump[@]}" | gzip -1 > "$work/pgb.sql.gz"
  "${dump[@]}" -Fc -Z 1 > "$work/pgb.dump"
  echo "  plain dump $(stat -c %s "$work/pgb.sql.gz") bytes (gzip -1), custom $(stat -c %s "$work/pgb.dump") bytes"
  mkdir -p "$work/up"
  union archive-target-database "$work/up" > "$conf"
  for a in "pgb:$work/pgb.sql.gz" "pgbc:$work/pgb.dump"; do
    "$pga" --log-target stderr --rclone-config "$conf" -R "$work/recipients.txt" archive --database "${a%%:*}" --file "${a#*:}" 2>"$work/err" ||
      { cat "$work/err"; exit 1; }
  done
  rm "$work/pgb.sql.gz"
  rpga=("$pga" --log-target stderr --rclone-config "$conf" --pg-bin "$pgbin" restore -i "$work/id.txt" --temp-dir "$work")
  # Every row creates its database inside the timing; before each run
  # (untimed) the loaded databases are checked (row count) and dropped, and
  # the cluster checkpointed.
  settle_pgb() {
    local db
    for db in $("${psql[@]}" -d postgres -At -c "select datname from pg_database where datname like 'r\_%'"); do
      [ "$("${psql[@]}" -d "$db" -At -c 'select count(*) from pgbench_accounts')" = "$accounts" ] || { echo "$db: wrong row count"; exit 1; }
      "${psql[@]}" -d postgres -c "DROP DATABASE $db"
    done
    "${psql[@]}" -d postgres -c CHECKPOINT
  }
  target() { echo "'host=$pgdir port=$port user=postgres dbname=$1'"; }
  cmd["pg_restore -j 2"]="${psql[*]} -d postgres -c 'CREATE DATABASE r_base TEMPLATE template0' && $pgbin/pg_restore -j 2 -h $pgdir -p $port -U postgres -d r_base '$work/pgb.dump'"
  cmd["restore --into custom --jobs 2"]="${rpga[*]} -d pgbc --jobs 2 --into $(target r_custom)"
  cmd["restore --into plain"]="${rpga[*]} -d pgb --into $(target r_plain)"
  for k in "pg_restore -j 2" "restore --into custom --jobs 2" "restore --into plain"; do pre[$k]=settle_pgb; done
  rounds "$into_reps" "pg_restore -j 2" "restore --into custom --jobs 2" "restore --into plain"
  settle_pgb
  verdict "restore --into custom -j 2 vs pg_restore -j 2" "restore --into custom --jobs 2" "pg_restore -j 2" 1.1
  info "  restore --into plain vs custom --jobs 2" "restore --into plain" "restore --into custom --jobs 2"
  stop_pg
  rm -rf "$work/up" "$work/pgb.dump"
fi

if [ "${BENCH_LIST:-1}" != 0 ]; then
  echo "== 3. list vs rclone lsjson -R: $n_archives archives on two MinIO servers (tmpfs)"
  "$work/bin/genarchives" -n "$n_archives" -dir "$work/tree" | sed 's/^/  /'
  mconf=$work/minio.conf
  : > "$mconf"
  for s in a b; do
    port=$(free_port) cport=$(free_port)
    mkdir -p "$work/minio-$s"
    MINIO_ROOT_USER=benchuser MINIO_ROOT_PASSWORD=benchpassword MINIO_CI_CD=1 \
      minio server "$work/minio-$s" --address "127.0.0.1:$port" --console-address "127.0.0.1:$cport" >"$work/minio-$s.log" 2>&1 &
    pids+=($!)
    printf '[m%s]\ntype = s3\nprovider = Minio\nendpoint = http://127.0.0.1:%d\naccess_key_id = benchuser\nsecret_access_key = benchpassword\nregion = us-east-1\n' "$s" "$port" >> "$mconf"
  done
  union archive-target-database ma:bench mb:bench >> "$mconf"
  for s in a b; do
    for i in $(seq 100); do rclone --config "$mconf" mkdir "m$s:bench" 2>/dev/null && break; [ "$i" = 100 ] && { cat "$work/minio-$s.log"; exit 1; }; sleep 0.2; done
  done
  start=$(date +%s.%N)
  copies=()
  for s in a b; do rclone --config "$mconf" copy --transfers 32 --checkers 32 "$work/tree" "m$s:bench" & copies+=($!); done
  for p in "${copies[@]}"; do wait "$p"; done
  echo "  copied to both buckets in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $start}") s"
  rm -rf "$work/tree"
  pgabase=("$pga" --log-target stderr --rclone-config "$mconf")
  list=("${pgabase[@]}" list)
  for k in 1 2; do
    /usr/bin/time -v -o "$work/timev" "${list[@]}" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
    w=$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$work/timev")
    r=$(awk -F': ' '/Maximum resident set size/{print $2}' "$work/timev")
    label=$([ "$k" = 1 ] && echo "first (cold)" || echo "second (warm)")
    echo "  list, $label run: $w s, peak RSS $(mib "$r") MiB"
    [ "$k" = 1 ] && list_cold=$w list_cold_rss=$r || list_warm=$w list_warm_rss=$r
  done

  # Every archive must be listed once, complete on both upstreams.
  "${list[@]}" --json > "$work/list.json"
  ok=$(jq '[.[] | select(.complete_copies == 2)] | length' "$work/list.json")
  total=$(jq length "$work/list.json")
  echo "  list --json: $total archives, $ok with an ok copy on every upstream"
  [ "$total" = "$n_archives" ] && [ "$ok" = "$n_archives" ] || { echo "list: want $n_archives archives complete on both upstreams"; exit 1; }

  cmd["pgarchive list"]="${list[*]}"
  cmd["pgarchive list --json"]="${list[*]} --json"
  cmd["rclone lsjson -R union"]="rclone --config '$mconf' lsjson -R archive-target-database:"
  cmd["rclone lsjson -R bucket a"]="rclone --config '$mconf' lsjson -R ma:bench"
  cmd["rclone lsjson -R bucket b"]="rclone --config '$mconf' lsjson -R mb:bench"
  cmd["rclone lsjson -R --no-modtime union"]="rclone --config '$mconf' lsjson -R --no-modtime --no-mimetype archive-target-database:"
  # The lifecycle commands start from the same catalog scan as list.
  cmd["pgarchive status"]="${pgabase[*]} status --max-age 0"
  cmd["pgarchive prune --dry-run"]="${pgabase[*]} prune --dry-run --keep-daily 30 --keep-monthly 12"
  cmd["pgarchive heal --dry-run --quick"]="${pgabase[*]} heal --dry-run --quick"
  # The dashboard: the same scan, then the page (and the JSON) written.
  cmd["pgarchive report --html"]="${pgabase[*]} report --max-age 0 --html $work/report.html --json-file $work/report.json"
  rows_list=("pgarchive list" "pgarchive list --json" "rclone lsjson -R union" "rclone lsjson -R bucket a" "rclone lsjson -R bucket b" "rclone lsjson -R --no-modtime union"
    "pgarchive status" "pgarchive prune --dry-run" "pgarchive heal --dry-run --quick" "pgarchive report --html")
  if command -v hyperfine >/dev/null || { [ "${BENCH_HYPERFINE:-1}" != 0 ] && apt-get install -y -qq hyperfine >/dev/null 2>&1; }; then
    echo "  hyperfine, 1 warmup + $list_reps runs each (median):"
    for name in "${rows_list[@]}"; do
      hyperfine -N --warmup 1 --runs "$list_reps" --export-json "$work/hf.json" "${cmd[$name]}" >/dev/null 2>"$work/err" ||
        { echo "$name failed:"; cat "$work/err"; exit 1; }
      med[$name]=$(jq '.results[0].median' "$work/hf.json")
      printf '  %-44s %8.3f s   (min %.3f, max %.3f)\n' "$name" "${med[$name]}" "$(jq '.results[0].min' "$work/hf.json")" "$(jq '.results[0].max' "$work/hf.json")"
    done
  else
    echo "  $list_reps runs each, round-robin (median):"
    rounds "$list_reps" "${rows_list[@]}"
  fi
  verdict "list vs rclone lsjson -R (union)" "pgarchive list" "rclone lsjson -R union" 3
  verdict "list --json vs rclone lsjson -R (union)" "pgarchive list --json" "rclone lsjson -R union" 3
  verdict "report --html vs list" "pgarchive report --html" "pgarchive list" 2
  for k in "rclone lsjson -R bucket a" "rclone lsjson -R bucket b" "rclone lsjson -R --no-modtime union"; do
    info "  $k" "$k" "rclone lsjson -R union"
  done
  # lsjson reads each object's modification time, which on S3 is a HEAD per
  # object; --no-modtime is the listing alone, the floor for any lister.
  info "  list vs lsjson -R --no-modtime" "pgarchive list" "rclone lsjson -R --no-modtime union"
  for k in "pgarchive status" "pgarchive prune --dry-run" "pgarchive heal --dry-run --quick"; do
    info "  ${k#pgarchive } vs lsjson -R" "$k" "rclone lsjson -R union"
  done
fi

echo
echo "== summary ($(nproc) cores; seconds: median; ratio: of the medians, row / baseline; paired: median of per-round ratios)"
printf '%-46s %8s %7s %7s   %-8s %s\n' "row" "seconds" "ratio" "paired" "target" "verdict"
printf '%s\n' "${table[@]}"
if [ -n "${rss["restore --output"]:-}" ]; then
  echo "peak RSS: restore --output $(mib "${rss["restore --output"]}") MiB (age|gunzip: $(mib "${rss["age|gunzip"]}") MiB, its largest process)"
fi
if [ -n "${rss["restore --into"]:-}" ]; then
  echo "peak RSS: restore --into $(mib "${rss["restore --into"]}") MiB (the larger of pgarchive and its psql; gunzip|psql: $(mib "${rss["gunzip|psql"]}") MiB)"
fi
if [ -n "${list_cold:-}" ]; then
  echo "list: first run $list_cold s (peak RSS $(mib "$list_cold_rss") MiB), second run $list_warm s (peak RSS $(mib "$list_warm_rss") MiB)"
fi
exit 0
