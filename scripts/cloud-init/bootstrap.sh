#!/bin/bash
# auto-consul-bootstrap: makes this machine a node of its Consul cluster. cloud-init runs it once
# at first boot (runcmd in auto-consul.yaml); running it again is safe. After that, systemd keeps
# auto-consul running across crashes and reboots. It
#   1. downloads consul (HashiCorp's release zip) and auto-consul (the release binary) and checks
#      each against the SHA-256 pinned in the settings; a mismatch stops everything;
#   2. creates the service user auto-consul;
#   3. fetches the gossip key from a secret source (GOSSIP_KEY_COMMAND) into
#      /etc/auto-consul/gossip.key (0600, root; the unit hands it over as a credential);
#   4. writes /etc/default/auto-consul from the AUTO_CONSUL_*, AWS_* and CONSUL_HTTP_TOKEN_FILE
#      settings;
#   5. enables and starts auto-consul.service (written by cloud-init to /etc/systemd/system).
# Settings: /etc/auto-consul/bootstrap.env (see auto-consul.yaml). ROOT, for tests only,
# prefixes every path this script writes or reads.
set -euo pipefail
umask 022
ROOT=${ROOT:-}
CONF="$ROOT/etc/auto-consul/bootstrap.env"
die() {
  echo "auto-consul-bootstrap: $*" >&2
  exit 1
}
[ -r "$CONF" ] || die "cannot read $CONF"
# shellcheck disable=SC1090
. "$CONF"

: "${INSTALL_CONSUL_VERSION:?set in $CONF}"
: "${INSTALL_AUTO_CONSUL_URL:?set in $CONF}"
INSTALL_CONSUL_URL=${INSTALL_CONSUL_URL:-https://releases.hashicorp.com/consul}
GOSSIP_KEY_COMMAND=${GOSSIP_KEY_COMMAND:-'aws ssm get-parameter --with-decryption --name "$GOSSIP_KEY_PARAMETER" --query Parameter.Value --output text'}
export GOSSIP_KEY_PARAMETER=${GOSSIP_KEY_PARAMETER:-}

arch=${ARCH:-$(uname -m)}
case "$arch" in
  x86_64 | amd64) arch=x86_64 goarch=amd64 ;;
  aarch64 | arm64) arch=aarch64 goarch=arm64 ;;
  *) die "unsupported machine $arch: expected x86_64 or aarch64" ;;
esac
sumvar() { # NAME -> value of NAME_X86_64 / NAME_AARCH64
  local v="${1}_${arch^^}"
  [[ ${!v:-} =~ ^[0-9a-f]{64}$ ]] ||
    die "$v in $CONF is not a SHA-256 (64 hex digits): pin the release file's checksum"
  echo "${!v}"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# fetch URL FILE SHA256: https (or file, for tests) only; the file is kept only if its hash matches.
fetch() {
  curl -fsSL --proto '=https,file' --retry 5 --retry-connrefused -o "$2.part" "$1" ||
    die "cannot download $1"
  if ! echo "$3  $2.part" | sha256sum --check --status -; then
    die "checksum mismatch for $1: expected $3, got $(sha256sum "$2.part" | cut -d' ' -f1)"
  fi
  mv "$2.part" "$2"
}

v=$INSTALL_CONSUL_VERSION
fetch "$INSTALL_CONSUL_URL/$v/consul_${v}_linux_$goarch.zip" "$tmp/consul.zip" \
  "$(sumvar INSTALL_CONSUL_SHA256)"
python3 -m zipfile -e "$tmp/consul.zip" "$tmp/consul-zip" || die "cannot unpack the consul zip"
fetch "$INSTALL_AUTO_CONSUL_URL/auto-consul-linux-$arch" "$tmp/auto-consul" \
  "$(sumvar INSTALL_AUTO_CONSUL_SHA256)"
install -d "$ROOT/usr/local/bin"
install -m 0755 "$tmp/consul-zip/consul" "$ROOT/usr/local/bin/consul"
install -m 0755 "$tmp/auto-consul" "$ROOT/usr/local/bin/auto-consul"

id -u auto-consul >/dev/null 2>&1 ||
  useradd --system --home-dir /var/lib/auto-consul --shell /usr/sbin/nologin auto-consul

# The gossip key: never printed, never in the environment file.
key=$(sh -c "$GOSSIP_KEY_COMMAND") || die "GOSSIP_KEY_COMMAND failed: no gossip key"
[[ $key =~ ^[A-Za-z0-9+/]{22,}={0,2}$ ]] ||
  die "GOSSIP_KEY_COMMAND did not print a gossip key (base64 of 16 or 32 bytes, from consul keygen)"
install -d -m 0700 "$ROOT/etc/auto-consul"
(umask 077 && printf '%s\n' "$key" >"$ROOT/etc/auto-consul/gossip.key.new")
mv "$ROOT/etc/auto-consul/gossip.key.new" "$ROOT/etc/auto-consul/gossip.key"

install -d "$ROOT/etc/default"
grep -E '^(AUTO_CONSUL_[A-Z_]+|AWS_REGION|AWS_ENDPOINT_URL_S3|CONSUL_HTTP_TOKEN_FILE)=' "$CONF" \
  >"$ROOT/etc/default/auto-consul.new" || true
grep -q '^AUTO_CONSUL_REGISTRY=.' "$ROOT/etc/default/auto-consul.new" ||
  die "AUTO_CONSUL_REGISTRY is not set in $CONF"
chmod 0644 "$ROOT/etc/default/auto-consul.new"
mv "$ROOT/etc/default/auto-consul.new" "$ROOT/etc/default/auto-consul"

systemctl daemon-reload
systemctl enable --now auto-consul.service
echo "auto-consul-bootstrap: consul $v and auto-consul installed, auto-consul.service started"
