#!/usr/bin/env bash
# Installs (when missing) and starts the real servers the test suite talks to, all on 127.0.0.1:
#   - s3s-fs      S3-compatible server (crate, cargo install; signatures and conditional create checked)
#   - Azurite     Azure Blob emulator (npm)
#   - PostgreSQL  15 (Debian package), run as the `postgres` user in a temporary directory; a
#                 second copy with wal_level=replica for capture's set-up check
#   - MariaDB     10.11 (Debian package), run as root in a temporary directory
# Usage: source scripts/servers.sh; servers_start; ... ; servers_stop
# After servers_start the environment holds CDC_TEST_S3_URI, CDC_TEST_AZURE_URI,
# CDC_TEST_POSTGRES_URI, CDC_TEST_POSTGRES_NO_LOGICAL_URI, CDC_TEST_MYSQL_URI and CDC_TEST_PYARROW_PYTHON (the tests read them; under CI=true a test whose
# server is missing fails instead of skipping). Tools are cached in $CDC_TOOLS_DIR.
set -euo pipefail

CDC_TOOLS_DIR=${CDC_TOOLS_DIR:-${HOME:-/root}/.cache/cdc-storage-tools}
S3S_VERSION=0.14.1
AZURITE_VERSION=3.37.0

log() { echo "[servers] $*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # host port seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    if python3 -c "import socket,sys; s=socket.create_connection(('$1',$2),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

install_debian_packages() {
  local missing=()
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server mariadb-client)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
  # promtool checks docs/alerts.yml (consumer/tests/alert_rules.rs)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  # headless Chromium loads the status page (consumer/tests/status_browser.rs)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium chromium-driver)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

install_s3s() {
  if [ ! -x "$CDC_TOOLS_DIR/bin/s3s-fs" ]; then
    log "installing s3s-fs $S3S_VERSION (cargo install, a few minutes the first time)"
    cargo install s3s-fs --version "$S3S_VERSION" --locked --features binary --root "$CDC_TOOLS_DIR" -q
  fi
}

install_azurite() {
  if [ ! -x "$CDC_TOOLS_DIR/azurite/node_modules/.bin/azurite-blob" ]; then
    log "installing azurite $AZURITE_VERSION (npm)"
    mkdir -p "$CDC_TOOLS_DIR/azurite"
    npm install --prefix "$CDC_TOOLS_DIR/azurite" --no-audit --no-fund --silent "azurite@$AZURITE_VERSION" >/dev/null
  fi
}

start_s3() {
  local port dir
  port=$(free_port)
  dir="$SERVERS_DIR/s3"
  mkdir -p "$dir/cdc-test"
  "$CDC_TOOLS_DIR/bin/s3s-fs" --host 127.0.0.1 --port "$port" --access-key cdcaccess --secret-key cdcsecret \
    "$dir" >"$SERVERS_DIR/s3.log" 2>&1 &
  echo $! >>"$SERVERS_DIR/pids"
  wait_port 127.0.0.1 "$port" 30 || { log "s3s-fs did not start"; cat "$SERVERS_DIR/s3.log" >&2; return 1; }
  export CDC_TEST_S3_URI="s3://cdc-test?endpoint=http://127.0.0.1:$port&access-key=cdcaccess&secret-access-key=cdcsecret&region=us-east-1"
  export CDC_TEST_S3_ROOT="$dir/cdc-test"
  log "s3s-fs on 127.0.0.1:$port"
}

create_azure_container() { # port container
  python3 - "$1" "$2" <<'PY'
import base64, hashlib, hmac, sys, urllib.request
from email.utils import formatdate
port, container = sys.argv[1], sys.argv[2]
account = "devstoreaccount1"
key = base64.b64decode("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
date, version = formatdate(usegmt=True), "2021-10-04"
ctype = "application/octet-stream"
to_sign = "\n".join(["PUT", "", "", "", "", ctype, "", "", "", "", "", "",
                     f"x-ms-date:{date}", f"x-ms-version:{version}",
                     f"/{account}/{account}/{container}", "restype:container"])
sig = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
req = urllib.request.Request(f"http://127.0.0.1:{port}/{account}/{container}?restype=container", method="PUT",
    data=b"", headers={"x-ms-date": date, "x-ms-version": version, "Content-Type": ctype,
                       "Content-Length": "0", "Authorization": f"SharedKey {account}:{sig}"})
try:
    urllib.request.urlopen(req)
except urllib.error.HTTPError as e:
    if e.code != 409:  # 409: exists already
        raise
PY
}

azure_account_sas() { # prints an account SAS token (blob service, read/write/delete/list, until 2099) for
  # the emulator's well-known account, signed with its published key (sv 2019-12-12 string to sign)
  python3 - <<'PY'
import base64, hmac, hashlib, urllib.parse
key = base64.b64decode("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
f = {"sv": "2019-12-12", "ss": "b", "srt": "sco", "sp": "rwdlac", "se": "2099-01-01T00:00:00Z", "spr": "https,http"}
to_sign = "\n".join(["devstoreaccount1", f["sp"], f["ss"], f["srt"], "", f["se"], "", f["spr"], f["sv"], ""])
f["sig"] = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
print(urllib.parse.urlencode(f))
PY
}

start_azurite() {
  local port
  port=$(free_port)
  "$CDC_TOOLS_DIR/azurite/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$port" \
    --inMemoryPersistence --silent --disableTelemetry >"$SERVERS_DIR/azurite.log" 2>&1 &
  echo $! >>"$SERVERS_DIR/pids"
  wait_port 127.0.0.1 "$port" 30 || { log "azurite did not start"; cat "$SERVERS_DIR/azurite.log" >&2; return 1; }
  create_azure_container "$port" cdc-test
  export CDC_TEST_AZURE_URI="azure://cdc-test?use-emulator=true&endpoint=http://127.0.0.1:$port"
  # credentials tests: the blob endpoint (account in the path) and an account SAS token for it
  export CDC_TEST_AZURE_BLOB_ENDPOINT="http://127.0.0.1:$port/devstoreaccount1"
  CDC_TEST_AZURE_SAS=$(azure_account_sas)
  export CDC_TEST_AZURE_SAS
  log "azurite on 127.0.0.1:$port"
}

make_tls_certs() { # a throwaway CA, a server certificate for 127.0.0.1/localhost, and an unrelated CA
  local d="$SERVERS_DIR/tls"
  command -v openssl >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl >/dev/null
  }
  mkdir -p "$d"
  for ca in ca wrong-ca; do
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=cdc-test-$ca" -keyout "$d/$ca.key" \
      -out "$d/$ca.pem" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  done
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >"$d/ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile "$d/ext" -out "$d/server.pem" 2>/dev/null
  chmod 644 "$d"/*.pem
  export CDC_TEST_TLS_CA="$d/ca.pem" CDC_TEST_TLS_WRONG_CA="$d/wrong-ca.pem"
}

start_postgres() {
  local port bin dir
  port=$(free_port)
  bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")
  dir="$SERVERS_DIR/pg"
  mkdir -p "$dir"
  chown postgres:postgres "$dir"
  runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$SERVERS_DIR/pg-init.log" 2>&1
  # A copy of the fresh cluster, started below with wal_level=replica (capture's set-up check).
  cp -a "$dir/data" "$dir/data-replica"
  # TLS offered (plain connections still accepted): the key must belong to postgres, mode 0600
  install -o postgres -g postgres -m 600 "$SERVERS_DIR/tls/server.key" "$dir/server.key"
  install -o postgres -g postgres -m 644 "$SERVERS_DIR/tls/server.pem" "$dir/server.pem"
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c ssl=on -c ssl_cert_file=$dir/server.pem -c ssl_key_file=$dir/server.key -c fsync=off -c max_connections=200 -c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20" start >/dev/null
  echo "pg:$bin:$dir/data" >>"$SERVERS_DIR/pids"
  runuser -u postgres -- "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE cdc" >/dev/null
  export CDC_TEST_POSTGRES_URI="postgres://postgres@127.0.0.1:$port/cdc"
  log "postgres on 127.0.0.1:$port"
  # The second server: no logical decoding, so capture must refuse it and say how to fix it.
  port=$(free_port)
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data-replica" -l "$dir/server-replica.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=20 -c wal_level=replica" start >/dev/null
  echo "pg:$bin:$dir/data-replica" >>"$SERVERS_DIR/pids"
  export CDC_TEST_POSTGRES_NO_LOGICAL_URI="postgres://postgres@127.0.0.1:$port/postgres"
  log "postgres (wal_level=replica) on 127.0.0.1:$port"
}

start_mariadb() {
  local port dir i
  port=$(free_port)
  dir="$SERVERS_DIR/mariadb"
  mkdir -p "$dir"
  mariadb-install-db --user=root --datadir="$dir/data" --auth-root-authentication-method=socket \
    --skip-test-db >"$SERVERS_DIR/mariadb-init.log" 2>&1
  mariadbd --no-defaults --user=root --datadir="$dir/data" --bind-address=127.0.0.1 --port="$port" \
    --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" --skip-log-bin \
    --max-connections=300 --ssl-cert="$SERVERS_DIR/tls/server.pem" --ssl-key="$SERVERS_DIR/tls/server.key" \
    --ssl-ca="$SERVERS_DIR/tls/ca.pem" >/dev/null 2>&1 & # TLS offered, plain still accepted
  echo $! >>"$SERVERS_DIR/pids"
  for ((i = 0; i < 300; i++)); do
    mariadb-admin --no-defaults --socket="$dir/mysqld.sock" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  mariadb --no-defaults --socket="$dir/mysqld.sock" -uroot -e \
    "CREATE DATABASE cdc; CREATE USER 'cdc'@'127.0.0.1' IDENTIFIED BY 'cdc'; GRANT ALL ON *.* TO 'cdc'@'127.0.0.1';"
  export CDC_TEST_MYSQL_URI="mysql://cdc:cdc@127.0.0.1:$port/cdc"
  log "mariadb on 127.0.0.1:$port"
}

# pyarrow (a Parquet reader nobody here wrote) in a cached venv; exports CDC_TEST_PYARROW_PYTHON.
PYARROW_VERSION=26.0.1
install_pyarrow() {
  local venv="$CDC_TOOLS_DIR/pyarrow-$PYARROW_VERSION"
  if ! "$venv/bin/python" -c 'import pyarrow' 2>/dev/null; then
    log "installing pyarrow $PYARROW_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "pyarrow==$PYARROW_VERSION"
  fi
  export CDC_TEST_PYARROW_PYTHON="$venv/bin/python"
}

servers_start() {
  SERVERS_DIR=$(mktemp -d /tmp/cdc-servers.XXXXXX)
  export SERVERS_DIR
  chmod 755 "$SERVERS_DIR"
  : >"$SERVERS_DIR/pids"
  install_debian_packages
  install_s3s
  install_azurite
  make_tls_certs
  start_s3
  start_azurite
  start_postgres
  start_mariadb
  install_pyarrow
  env | grep '^CDC_TEST_' | sed "s/^\([^=]*\)=\(.*\)\$/export \1='\2'/" >"$SERVERS_DIR/env"
}

servers_stop() {
  [ -n "${SERVERS_DIR:-}" ] && [ -f "$SERVERS_DIR/pids" ] || return 0
  while read -r entry; do
    case "$entry" in
      pg:*)
        IFS=: read -r _ bin data <<<"$entry"
        runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true ;;
      *) kill "$entry" 2>/dev/null || true ;;
    esac
  done <"$SERVERS_DIR/pids"
  sleep 0.5
  rm -rf "$SERVERS_DIR"
}
