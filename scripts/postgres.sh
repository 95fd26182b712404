# Sourced by scripts/test.sh: a throwaway PostgreSQL cluster for the postgres plugin's tests.
# Debian's PostgreSQL (installed if missing, without its default cluster), initdb in a temp
# directory (as the `postgres` user when we are root: initdb refuses root), a free port on
# 127.0.0.1, the socket in the same directory; stopped and removed when the shell exits.
# Exports FERRITE_TEST_POSTGRES, the URL the tests connect to.

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

if [ -z "$(pg_bin)" ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.conf >/dev/null
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi

PG_BIN="$(pg_bin)"
PG_DIR="$(mktemp -d /tmp/ferrite-pg.XXXXXX)"
PG_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
PG_OPTS="-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -o "$PG_OPTS" start >/dev/null
pg_cleanup() {
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
trap pg_cleanup EXIT
export FERRITE_TEST_POSTGRES="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
# for the outage tests, which stop and start the cluster as it was started here
export FERRITE_TEST_PG_BIN="$PG_BIN" FERRITE_TEST_PG_DATA="$PG_DIR/data"
export FERRITE_TEST_PG_OPTS="$PG_OPTS" FERRITE_TEST_PG_LOG="$PG_DIR/log"
