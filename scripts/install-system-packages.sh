#!/usr/bin/env bash
# Installs the Debian packages the lab needs, only those missing; idempotent and quiet when done.
# chromium and a font: the cluster board's browser test (headless, screenshots).
set -euo pipefail
packages=(iptables nftables tcpdump iproute2 iputils-ping conntrack curl chromium fonts-dejavu-core)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# kubectl: this machine kind has one; elsewhere Debian's kubernetes-client provides it
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing system packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
