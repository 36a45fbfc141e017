#!/usr/bin/env bash
# Installs what the interop and browser tests run: OpenSSL 3, Java 17 with BouncyCastle, Node.js
# with the libas2 npm package, Chromium for the console tests, and a PostgreSQL server on
# 127.0.0.1:5432 for the PostgreSQL store's tests (trust authentication for local connections,
# database "test"; AS2GATE_TEST_POSTGRES points the tests at another). Already-present tools,
# and a server already answering on 127.0.0.1:5432, are left alone. Outside CI a tool that cannot be installed is reported and its tests skip; in CI
# (CI=true) the tests fail instead.
set -uo pipefail
cd "$(dirname "$0")/.."

missing=()
have() { command -v "$1" >/dev/null 2>&1; }
apt_updated=
apt_install() {
  have apt-get || { missing+=("$*"); return; }
  local sudo=; [ "$(id -u)" -ne 0 ] && have sudo && sudo=sudo
  if [ -z "$apt_updated" ]; then $sudo apt-get update -qq >/dev/null 2>&1; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 ||
    missing+=("$*")
}

have openssl || apt_install openssl
have javac || apt_install openjdk-17-jdk-headless
[ -f /usr/share/java/bcpkix.jar ] && [ -f /usr/share/java/bcprov.jar ] && [ -f /usr/share/java/bcutil.jar ] ||
  apt_install libbcpkix-java libbcprov-java libbcutil-java
have node && have npm || apt_install nodejs npm
[ -x /usr/bin/chromium ] || have chromium || apt_install chromium

# PostgreSQL: when nothing answers on 127.0.0.1:5432, Debian's server package, and a cluster
# on that port that trusts local connections (a throwaway test server, never a production one).
pg_answers() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
pg_setup() {
  local sudo=; [ "$(id -u)" -ne 0 ] && have sudo && sudo=sudo
  have pg_createcluster || apt_install postgresql
  have pg_createcluster || return 1
  local ver
  ver=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$ver" ] || return 1
  local conf=/etc/postgresql/$ver/main
  if [ ! -f "$conf/postgresql.conf" ]; then
    $sudo pg_createcluster "$ver" main -p 5432 -- --auth-local=trust --auth-host=trust >/dev/null || return 1
  fi
  # A cluster the package created asks for passwords: trust loopback and the local socket.
  if ! $sudo grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
    $sudo sh -c "{ printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n'; cat '$conf/pg_hba.conf'; } >'$conf/pg_hba.conf.new' &&
      mv '$conf/pg_hba.conf.new' '$conf/pg_hba.conf' && chown postgres:postgres '$conf/pg_hba.conf'" || return 1
  fi
  $sudo sed -i -e "s/^#\?listen_addresses.*/listen_addresses = '127.0.0.1'/" -e "s/^#\?port = .*/port = 5432/" "$conf/postgresql.conf"
  $sudo pg_ctlcluster "$ver" main restart >/dev/null 2>&1 || $sudo pg_ctlcluster "$ver" main start >/dev/null || return 1
  for _ in $(seq 1 30); do pg_answers && break; sleep 1; done
  pg_answers || return 1
  psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 ||
    psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE test' >/dev/null || return 1
}
pg_answers || pg_setup || missing+=("postgresql")

if [ -f interop/libas2/package.json ] && have npm; then
  if [ ! -d interop/libas2/node_modules/libas2 ]; then
    (cd interop/libas2 && npm install --no-audit --no-fund --loglevel=error >/dev/null) || missing+=("npm libas2")
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "testdeps: could not install: ${missing[*]}" >&2
  [ "${CI:-}" = true ] && exit 1
  echo "testdeps: the tests that need them will skip" >&2
fi
exit 0
