#!/usr/bin/env bash
# Installs what auto-consul's tests and demo need into .tools/ (or $1) when missing:
#   Deno 2.x       from the npm package `deno` (it ships the real binary)
#   Consul 1.8.7   from Debian 11's `consul` package, unpacked (no system change)
#   moto           (an S3-compatible server) from Debian 13's `python3-moto`, unpacked,
#                  run on this machine's python3 with Debian 12's dependencies.
#   nftables       (Debian 12's package, installed system-wide) for the partition tests.
#   systemd, cloud-init, curl (Debian 12's packages, system-wide, when missing) for the
#                  systemd unit and cloud-init tests.
# Idempotent and quiet when everything is already there. Prints nothing on success
# unless AUTO_CONSUL_INSTALL_VERBOSE=1.
set -euo pipefail
PREFIX=${1:-"$(cd "$(dirname "$0")/.." && pwd)/.tools"}
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
DENO_VERSION=2.9.6
say() { [ "${AUTO_CONSUL_INSTALL_VERBOSE:-0}" = 1 ] && echo "install-deps: $*" >&2 || true; }

if [ ! -x "$PREFIX/node_modules/.bin/deno" ]; then
  say "installing deno $DENO_VERSION from npm"
  npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "deno@$DENO_VERSION" >/dev/null
fi

mirror() {
  local m
  m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$m" ] || m=http://deb.debian.org/debian
  echo "$m"
}
# apt options for one extra Debian suite whose lists stay private to PREFIX
suite_apt() {
  local s=$1 d="$PREFIX/apt-$1"
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(mirror) $s main" >"$d/sources.list"
  echo "-o Dir::Etc::SourceList=$d/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$d/lists -o Dir::Cache=$d/cache -o APT::Sandbox::User=root"
}
fetch_deb() { # suite package dest
  local o
  o=$(suite_apt "$1")
  # shellcheck disable=SC2086
  apt-get $o update -qq >/dev/null
  # shellcheck disable=SC2086
  (cd "$PREFIX" && apt-get $o download -qq "$2" >/dev/null)
  dpkg-deb -x "$PREFIX"/"$2"_*.deb "$3"
  rm -f "$PREFIX"/"$2"_*.deb
}

if [ ! -x "$PREFIX/consul/usr/bin/consul" ]; then
  say "installing consul from Debian bullseye"
  fetch_deb bullseye consul "$PREFIX/consul"
fi

PYDEPS="python3-boto3 python3-botocore python3-cryptography python3-dateutil python3-flask
  python3-flask-cors python3-jinja2 python3-requests python3-responses python3-werkzeug
  python3-xmltodict python3-yaml"
if ! /usr/bin/python3 -c 'import boto3, flask, flask_cors, werkzeug, xmltodict, responses, yaml, jinja2, cryptography, dateutil' 2>/dev/null; then
  say "installing moto's python dependencies from Debian"
  apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PYDEPS >/dev/null
fi
if [ ! -d "$PREFIX/moto/usr/lib/python3/dist-packages/moto" ]; then
  say "installing moto from Debian trixie"
  fetch_deb trixie python3-moto "$PREFIX/moto"
fi
# nftables: the partition tests cut traffic between the loopback addresses they own.
if ! command -v nft >/dev/null 2>&1 && [ ! -x /usr/sbin/nft ]; then
  say "installing nftables from Debian"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null
fi
# systemd-analyze (the unit's verify and security tests), cloud-init (`cloud-init schema` on the
# cloud-config) and curl (its install script, run against local files): Debian 12 packages,
# without recommends (cloud-init takes about a minute). A cloud-init installed here is disabled
# (/etc/cloud/cloud-init.disabled) so it never reconfigures this machine at its next boot.
SYSPKGS=""
[ -x /usr/bin/systemd-analyze ] || SYSPKGS="$SYSPKGS systemd"
[ -x /usr/bin/cloud-init ] || SYSPKGS="$SYSPKGS cloud-init"
command -v curl >/dev/null 2>&1 || SYSPKGS="$SYSPKGS curl"
if [ -n "$SYSPKGS" ]; then
  say "installing$SYSPKGS from Debian"
  log="$PREFIX/apt-install.log"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends $SYSPKGS; } >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
  case "$SYSPKGS" in *cloud-init*) mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled ;; esac
fi
say "deno:   $PREFIX/node_modules/.bin/deno"
say "consul: $PREFIX/consul/usr/bin/consul"
say "moto:   $PREFIX/moto/usr/lib/python3/dist-packages"
