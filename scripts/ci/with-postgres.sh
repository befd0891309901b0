#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL 15 + pgvector cluster.
#
#   bash scripts/ci/with-postgres.sh <command> [args...]
#
# The command sees TEST_DATABASE_URL (database companion_test) and PG_ADMIN_URL (database
# postgres, same superuser credentials, for creating per-test-file databases) and
# PG_RESTART_SCRIPT (restarts the cluster on the same port: `"$PG_RESTART_SCRIPT" fast` or
# `"$PG_RESTART_SCRIPT" immediate`, crash-like). CI_PG_SHARED_BUFFERS sets the cluster's
# shared_buffers (default 128MB, PostgreSQL's own; benches at 100k+ memories also run with a
# production-like 1GB, BENCHMARKS.md §2). The cluster
# and its temp dir are always removed afterwards; the script exits with the command's code.
# Debian bookworm ships no pgvector package, so on first use (as root) it is built from
# Debian trixie's *source* package; no trixie binary package is ever installed.
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
DB_USER=companion DB_PASS=companion DB_NAME=companion_test
SRC_LIST=/etc/apt/sources.list.d/ci-trixie-src.list
BUILD_LOG=${PGVECTOR_BUILD_LOG:-/var/log/ci-pgvector-build.log}
export DEBIAN_FRONTEND=noninteractive

log() { echo "[with-postgres] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ $# -gt 0 ] || die "usage: $0 <command> [args...]"
[ -x "$PG_BIN/postgres" ] || die "PostgreSQL 15 server binaries not found in $PG_BIN"

TMP="" BUILD_DIR="" IN_BUILD=0 PG_STARTED=0
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [ "$IN_BUILD" = 1 ]; then  # build output went to the log: show why it failed
    exec 1>&3 2>&4; rm -f "$SRC_LIST"  # the trixie deb-src line is only for the build
    log "pgvector build failed (exit $rc); last lines of $BUILD_LOG:"; tail -n 40 "$BUILD_LOG" >&2
  fi
  if [ "$PG_STARTED" = 1 ]; then
    # The postmaster runs in its own session, so signals to our process group miss it. If we
    # were interrupted mid-start, give it a moment to write its pid file before stopping it.
    for _ in 1 2 3 4 5 6 7 8 9 10; do [ -f "$TMP/data/postmaster.pid" ] && break; sleep 0.3; done
    if [ -f "$TMP/data/postmaster.pid" ]; then  # throwaway data: immediate shutdown is fine
      as_pg "$PG_BIN/pg_ctl" stop -D "$TMP/data" -m immediate -w -t 30 >/dev/null 2>&1 \
        || kill -9 "$(head -1 "$TMP/data/postmaster.pid")" 2>/dev/null
    fi
  fi
  [ -n "$TMP" ] && rm -rf "$TMP"
  [ -n "$BUILD_DIR" ] && rm -rf "$BUILD_DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT   # turn signals into a normal exit so the EXIT trap cleans up
trap 'exit 143' TERM

# ---------- 1. pgvector (build once, from Debian's own source package) ----------
pgvector_ok() { [ -f /usr/share/postgresql/15/extension/vector.control ] && [ -f "$("$PG_CONFIG" --pkglibdir)/vector.so" ]; }
if pgvector_ok; then
  log "pgvector already installed; skipping build"
else
  [ "$(id -u)" = 0 ] || die "pgvector is not installed and building it needs root"
  exec 9>/var/lock/ci-pgvector.lock; flock 9  # parallel CI jobs must not build concurrently
  if ! pgvector_ok; then
    log "building pgvector from Debian trixie source (log: $BUILD_LOG)"
    start=$SECONDS
    exec 3>&1 4>&2 >"$BUILD_LOG" 2>&1; IN_BUILD=1
    # Reuse the mirror host the machine already uses (deb822 .sources or one-line .list).
    mirror=$( { grep -hsE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources \
                  | awk '{print $2}' | grep -E '/debian/?$'
                grep -hsE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                  | grep -oE 'https?://[^ ]+/debian/?( |$)'; } | head -1 | tr -d ' ' || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    # deb-src only: apt gets no trixie *binary* indexes, so nothing can be pinned/upgraded from it.
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} trixie main" >"$SRC_LIST"
    # Refresh just that list; keep the other lists (and their candidate versions) untouched.
    apt-get update -o Dir::Etc::sourcelist="$SRC_LIST" -o Dir::Etc::sourceparts=- \
      -o APT::Get::List-Cleanup=0
    # A fresh machine may have no binary lists at all: only then do a full update.
    apt-cache show postgresql-server-dev-15 >/dev/null 2>&1 || apt-get update
    # Headers must match the installed server; pinning also stops libpq-dev etc. from upgrading.
    pgver=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true) pin="" pkgs=()
    [ -n "$pgver" ] && apt-cache madison postgresql-server-dev-15 | grep -F " $pgver " >/dev/null && pin="=$pgver"
    dpkg -s postgresql-server-dev-15 >/dev/null 2>&1 || pkgs+=("postgresql-server-dev-15$pin")
    command -v gcc >/dev/null && command -v make >/dev/null || pkgs+=(build-essential)
    command -v dpkg-source >/dev/null || pkgs+=(dpkg-dev)  # needed by `apt-get source`
    [ ${#pkgs[@]} -eq 0 ] || apt-get install -y --no-install-recommends --no-upgrade "${pkgs[@]}"
    BUILD_DIR=$(mktemp -d /tmp/ci-pgvector.XXXXXX)
    (  # subshell: the cd's must not change the directory the user's command runs in
      cd "$BUILD_DIR"
      apt-get source pgvector  # Debian's patches drop -march=native, so the .so is portable
      cd "$(find . -mindepth 1 -maxdepth 1 -type d -name 'pgvector-*' | head -1)"
      # with_llvm=no: skip LLVM JIT bitcode (needs a matching clang; JIT is irrelevant for tests).
      make -j"$(nproc)" PG_CONFIG="$PG_CONFIG" with_llvm=no
      make install PG_CONFIG="$PG_CONFIG" with_llvm=no
    )
    rm -rf "$BUILD_DIR"; BUILD_DIR=""; rm -f "$SRC_LIST"
    exec 1>&3 2>&4 3>&- 4>&-; IN_BUILD=0
    pgvector_ok || die "pgvector build finished but vector.control/vector.so are missing"
    log "pgvector built and installed in $((SECONDS - start))s"
  fi
  exec 9>&-  # release the lock; postgres and the command must not inherit it
fi

# ---------- 2. throwaway cluster, owned by a non-root user ----------
# postgres refuses to run as root, so as root everything server-side runs as PG_USER.
if [ "$(id -u)" = 0 ]; then
  PG_USER=postgres
  id "$PG_USER" >/dev/null 2>&1 || PG_USER=ci-postgres  # no postgres user: use a dedicated one
  id "$PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
  as_pg() { (cd / && runuser -u "$PG_USER" -- "$@"); }
else
  PG_USER=$(id -un)
  as_pg() { "$@"; }
fi
TMP=$(mktemp -d /tmp/ci-pg.XXXXXX)
chown "$PG_USER" "$TMP"
as_pg "$PG_BIN/initdb" -D "$TMP/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
  >"$TMP/initdb.log" 2>&1 || { cat "$TMP/initdb.log" >&2; die "initdb failed"; }
# Trust is acceptable only because nothing but loopback (and a private socket dir) is reachable.
printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$TMP/data/pg_hba.conf"
cat >>"$TMP/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$TMP'
# Durability is pointless for a throwaway test cluster; speed matters.
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = ${CI_PG_SHARED_BUFFERS:-128MB}
EOF

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }  # something accepts => busy
PORT=""
for p in ${CI_PG_PORT:-} 54329 $(seq 54330 54399); do
  port_busy "$p" && continue
  # Start can still lose a race for the port; then simply try the next one.
  PG_STARTED=1  # set before starting so an interrupt during start still stops the server
  if as_pg "$PG_BIN/pg_ctl" start -D "$TMP/data" -o "-p $p" -l "$TMP/postgres.log" -w -t 60 >/dev/null 2>&1; then
    PORT=$p; break
  fi
  grep -q 'could not bind\|Address already in use' "$TMP/postgres.log" 2>/dev/null \
    || { tail -n 20 "$TMP/postgres.log" >&2; die "postgres failed to start"; }
done
[ -n "$PORT" ] || die "no free port in 54329-54399"

# A restart helper for tests that take the database away under load (test/db-restart.test.ts):
#   "$PG_RESTART_SCRIPT" [fast|immediate] [seconds down]
# fast: clean shutdown (sessions terminated, checkpoint); immediate: crash-like (no checkpoint,
# crash recovery on start). With a number of seconds, the server stays down that long before it
# starts again (otherwise a plain `pg_ctl restart`). Self-contained (paths and port baked in) so
# the command can run it; as root it switches to PG_USER like as_pg does (root may enter the
# PG_USER-owned temp dir). -l keeps the new postmaster's output off the caller's pipes.
runner=""; [ "$(id -u)" = 0 ] && runner="runuser -u $PG_USER --"
cat >"$TMP/restart-postgres.sh" <<RESTART
#!/usr/bin/env bash
set -euo pipefail
mode=\${1:-fast} down=\${2:-0}
case "\$mode" in fast|immediate) ;; *) echo "usage: \$0 [fast|immediate] [seconds down]" >&2; exit 2 ;; esac
cd /
pg_ctl() { $runner "$PG_BIN/pg_ctl" "\$@" -D "$TMP/data" -w -t 60; }
if [ "\$down" = 0 ]; then
  pg_ctl restart -m "\$mode" -o "-p $PORT" -l "$TMP/postgres.log"
else
  pg_ctl stop -m "\$mode"
  sleep "\$down"
  pg_ctl start -o "-p $PORT" -l "$TMP/postgres.log"
fi
RESTART
chmod 755 "$TMP/restart-postgres.sh"

# ---------- 3. role, database, and proof that pgvector loads ----------
psql_su() { PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }
psql_su -d postgres -c "CREATE ROLE $DB_USER LOGIN SUPERUSER PASSWORD '$DB_PASS'" \
  -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
# The distance call forces vector.so to load, not just the extension's SQL script to run.
ver=$(psql_su -d "$DB_NAME" -tA -c "CREATE EXTENSION vector" \
  -c "SELECT extversion || ' (distance check ' || ('[1,2,3]'::vector <-> '[1,2,5]'::vector) || ')' FROM pg_extension WHERE extname = 'vector'")
log "PostgreSQL 15 on 127.0.0.1:$PORT, pgvector $ver"

# ---------- 4. run the command ----------
export TEST_DATABASE_URL="postgres://$DB_USER:$DB_PASS@127.0.0.1:$PORT/$DB_NAME"
export PG_ADMIN_URL="postgres://$DB_USER:$DB_PASS@127.0.0.1:$PORT/postgres"
export PG_RESTART_SCRIPT="$TMP/restart-postgres.sh"
"$@" && rc=0 || rc=$?  # a failing command must not trip `set -e` before we record its code
exit "$rc"  # the EXIT trap stops the cluster and removes the temp dir
