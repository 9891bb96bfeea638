#!/usr/bin/env bash
# A throwaway PostgreSQL 15 with pgvector for the test suite's real-server pass.
#
# Debian 12 ships PostgreSQL 15 but no pgvector binary; Debian's next release (trixie) carries pgvector
# as a source package that builds against 15 in seconds. This builds it once (idempotent), then starts
# a cluster in a temporary folder on a free port and prints the URL for LOUPE_TEST_DATABASE_URL.
# Usage: url=$(bash .ci/postgres.sh start DIR); ...; bash .ci/postgres.sh stop DIR (restart DIR: a fast restart)
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)

install_pgvector() {
  [ -f /usr/share/postgresql/15/extension/vector.control ] && return 0
  if [ ! -x "$PG_BIN/initdb" ]; then
    "${as_root[@]}" apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends postgresql-15 >&2
  fi
  local sources=/etc/apt/sources.list.d/loupe-trixie-src.sources
  if [ ! -f "$sources" ]; then
    # the same archive and keyring as the machine's own Debian entry, source packages only
    local uri
    uri=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n 1 | awk '{print $2}')
    uri=${uri:-http://deb.debian.org/debian}
    printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" |
      "${as_root[@]}" tee "$sources" >/dev/null
  fi
  "${as_root[@]}" apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends \
    postgresql-server-dev-15 make gcc >&2
  local work
  work=$(mktemp -d)
  (
    cd "$work"
    apt-get source --download-only pgvector >&2
    tar xf pgvector_*.orig.tar.*
    cd pgvector-*/
    # OPTFLAGS="" leaves out -march=native, so the build runs on any x86-64 machine
    make OPTFLAGS="" >&2
    "${as_root[@]}" make install >&2
  )
  rm -rf "$work"
}

# below the kernel's ephemeral range (32768+), where outgoing connections take their local ports, and
# below the test suite's own per-worker ranges (20000+); written as text, since console.log colours
# numbers when FORCE_COLOR is set (as it is under the test runner)
free_port() {
  node -e "
    const net = require('net');
    const tryPort = () => {
      const port = 10000 + Math.floor(Math.random() * 10000);
      const s = net.createServer();
      s.once('error', tryPort);
      s.listen(port, '127.0.0.1', () => { process.stdout.write(port + '\\n'); s.close(); });
    };
    tryPort();"
}

start() {
  local dir=$1
  install_pgvector
  mkdir -p "$dir"
  chown postgres "$dir" 2>/dev/null || true
  # initdb refuses to run as root: the cluster belongs to the postgres user
  local run=(su postgres -s /bin/bash -c)
  [ "$(id -u)" -eq 0 ] || run=(bash -c)
  "${run[@]}" "$PG_BIN/initdb -D '$dir/data' -A trust -U postgres >/dev/null"
  # a port that was free a moment ago can be taken by then (a busy machine's outgoing connections use
  # the same range): try a few, and say why the last one failed
  local port
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    if "${run[@]}" "$PG_BIN/pg_ctl -D '$dir/data' -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c max_connections=300\" -l '$dir/log' -w start >/dev/null"; then
      echo "postgres://postgres@127.0.0.1:$port/postgres"
      return 0
    fi
  done
  tail -n 20 "$dir/log" >&2 || true
  return 1
}

# a fast restart, as an operator's or a failover's: every connection is dropped, the server comes back
restart() {
  local dir=$1
  local run=(su postgres -s /bin/bash -c)
  [ "$(id -u)" -eq 0 ] || run=(bash -c)
  "${run[@]}" "$PG_BIN/pg_ctl -D '$dir/data' -m fast -w restart >/dev/null"
}

stop() {
  local dir=$1
  local run=(su postgres -s /bin/bash -c)
  [ "$(id -u)" -eq 0 ] || run=(bash -c)
  [ -d "$dir/data" ] && "${run[@]}" "$PG_BIN/pg_ctl -D '$dir/data' -m fast -w stop >/dev/null" || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start "$2" ;;
  stop) stop "$2" ;;
  restart) restart "$2" ;;
  install) install_pgvector ;;
  *) echo "usage: $0 start DIR | restart DIR | stop DIR | install" >&2; exit 2 ;;
esac
