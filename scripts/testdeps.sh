#!/usr/bin/env bash
# Installs what the interop and browser tests run: OpenSSL 3, Java 17 with BouncyCastle, Node.js
# with the libas2 npm package, and Chromium for the console tests. Already-present tools are
# left alone. Outside CI a tool that cannot be installed is reported and its tests skip; in CI
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

if [ -f interop/libas2/package.json ] && have npm; then
  if [ ! -d interop/libas2/node_modules/libas2 ]; then
    (cd interop/libas2 && npm install --no-audit --no-fund --loglevel=error >/dev/null) || missing+=("npm libas2")
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "testdeps: could not install: ${missing[*]}" >&2
  [ "${CI:-}" = true ] && exit 1
  echo "testdeps: the interop tests that need them will skip" >&2
fi
exit 0
