#!/usr/bin/env bash
# Install the Debian packages phx-hook's tests and demo need, only when missing.
# Usage: install-deps.sh [test|demo|bench|deb]
set -euo pipefail

# gnupg: the real gpg makes every key and vault the tests decrypt.
# qemu-guest-agent: the real agent, confined to a directory, plays a VM.
# qemu-system-x86, busybox-static: a real VM (TCG) with a busybox + qemu-ga initramfs.
# lxc: real containers, privileged and idmapped.
# python3: the qm/pct stand-ins of the simulated Proxmox node; python3-jsonschema validates
# SARIF output against the shipped schema; git: scan --history and vault --history.
# systemd: its own env-file parser (libsystemd-shared) checks `format: env` files, and gcc
# builds the small harness that calls it. shellcheck lints the programs that run in
# guests (make lint). inotify-tools: the racing attacker in the hostile-guest tests.
# python3-venv: pre-commit (from PyPI, pinned, in target/venv) runs the repository's
# .pre-commit-hooks.yaml in a test; make bench puts CredSweeper and detect-secrets in
# target/bench-venv.
# debootstrap: a Debian rootfs with systemd as init, for the container whose first
# service reads its secret at boot (tests/scripts/build-sd-rootfs.sh).
# util-linux (unshare, prlimit, setpriv) is always there.
pkgs=(gnupg qemu-guest-agent qemu-system-x86 busybox-static lxc python3 python3-jsonschema git
  systemd gcc libc6-dev shellcheck inotify-tools debootstrap python3-venv)
# make bench also needs: the baseline hook's jq, hyperfine, valgrind (callgrind).
# python3-dev: CredSweeper's dependencies build a C extension (twofish).
if [ "${1:-}" = bench ]; then pkgs+=(jq hyperfine valgrind python3-dev); fi
# make deb / deb-test: man-db renders the man page, bash-completion loads completions,
# dpkg-dev gives cargo-deb dpkg-shlibdeps.
if [ "${1:-}" = deb ]; then pkgs+=(man-db bash-completion dpkg-dev); fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The VM test unpacks Debian's kernel package (not installed), so the package lists
# must know it.
if ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] && apt-get update -q
fi
# make deb: cargo-deb, from crates.io, pinned.
CARGO_DEB_VERSION=3.8.0
if [ "${1:-}" = deb ] && ! cargo deb --version 2>/dev/null | grep -q "^cargo-deb $CARGO_DEB_VERSION\$"; then
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi
# Python tools from PyPI, pinned, in virtual environments under target/ (nothing
# system-wide): pre-commit for the tests; the two scanners make bench compares with.
here=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
[ -x "$py" ] || py=python3
venv() { # venv DIR PACKAGE==VERSION...
  local dir=$1
  shift
  if [ -x "$dir/bin/pip" ] && "$dir/bin/pip" freeze 2>/dev/null | grep -qx "$1"; then
    return 0
  fi
  "$py" -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check "$@"
}
PRE_COMMIT_VERSION=4.0.1
venv "$here/target/venv" "pre-commit==$PRE_COMMIT_VERSION"
if [ "${1:-}" = bench ]; then
  DETECT_SECRETS_VERSION=1.5.0
  CREDSWEEPER_VERSION=1.19.5
  venv "$here/target/bench-venv" "detect-secrets==$DETECT_SECRETS_VERSION" "credsweeper==$CREDSWEEPER_VERSION"
fi
