#!/usr/bin/env bash
# lab/setup.sh — idempotent: install what the CONTROL machine needs for the lab, and build
# (once, cached) the S3 server and the hosts' root tree. Nothing here starts a daemon on the
# control machine: every host's root is the cached debootstrap tree, never the machine's own.
#   HOLIDAY_LAB_CACHE  cache dir (default /var/cache/holiday-lab)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root
with_lock

# --- 1. packages for the control side only (no nginx/PostgreSQL/MariaDB/Redis here) ---
CONTROL_PKGS=(openssh-client iptables nftables iproute2 systemd-container debootstrap
  restic rsync zstd util-linux procps curl ca-certificates)
installed=$(dpkg-query -W -f='${db:Status-Abbrev}${Package}\n' "${CONTROL_PKGS[@]}" 2>/dev/null | grep -c '^ii ' || true)
if [ "$installed" -ne "${#CONTROL_PKGS[@]}" ]; then
  log "installing ${CONTROL_PKGS[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    "${CONTROL_PKGS[@]}" >/dev/null
  log "packages installed"
fi

# --- 2. versitygw, the lab's real S3 server (~2.5 min cold build on 2 cores) ---
VGW=$LAB_CACHE/versitygw-$VGW_VERSION/versitygw
if [ ! -x "$VGW" ]; then
  command -v go >/dev/null || die "go is needed to build versitygw"
  log "building versitygw $VGW_VERSION (once; ~2.5 min)"
  mkdir -p "${VGW%/*}"
  GOBIN="${VGW%/*}" GOFLAGS=-buildvcs=false go install "github.com/versity/versitygw/cmd/versitygw@$VGW_VERSION"
  log "versitygw built"
fi

# --- 3. the hosts' root tree, in two cached layers ---
# base-KEY:   the debootstrap tree (~70 s), keyed by rootfs.packages; never booted or seeded.
# rootfs-KEY: a copy of it seeded with what all hosts share (~15 s), keyed by the packages, the
#             seed script and lab/rootfs/; this is the read-only lower layer of every host.
BASE=$LAB_CACHE/base-$(sha256sum <"$LAB_SRC/rootfs.packages" | cut -c1-16)
ROOTFS=$(rootfs_dir)
T=
cleanup() {
  [ -n "$T" ] || return 0
  for m in dev/shm run proc; do if mountpoint -q "$T/$m"; then umount -l "$T/$m"; fi; done
}
trap cleanup EXIT
if [ ! -f "$BASE/.lab-complete" ]; then
  MIRROR=${HOLIDAY_LAB_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
  [ -n "$MIRROR" ] || MIRROR=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$MIRROR" ] || die "no Debian mirror found in the apt sources; set HOLIDAY_LAB_MIRROR"
  T=$BASE.tmp
  cleanup; rm -rf "$T"; mkdir -p "$LAB_CACHE"
  log "debootstrap bookworm from $MIRROR into $T (once; ~70-200 s)"
  # debootstrap itself keeps daemons from starting while it configures packages (it installs a
  # policy-rc.d and a fake start-stop-daemon in the tree, and removes them when done)
  debootstrap --variant=minbase --include="$(paste -sd, "$LAB_SRC/rootfs.packages")" \
    bookworm "$T" "$MIRROR" >"$LAB_CACHE/debootstrap.log" 2>&1 || { tail -20 "$LAB_CACHE/debootstrap.log"; die "debootstrap failed (log: $LAB_CACHE/debootstrap.log)"; }
  rm -f "$T"/var/cache/apt/archives/*.deb
  touch "$T/.lab-complete"
  mv "$T" "$BASE"; T=
  log "debootstrap done: $BASE"
fi
if [ ! -f "$ROOTFS/.lab-complete" ]; then
  T=$ROOTFS.tmp
  cleanup; rm -rf "$T"
  cp -a "$BASE" "$T"
  rm -f "$T/.lab-complete"
  # nothing may start inside the chroot while seeding (removed again below)
  printf '#!/bin/sh\nexit 101\n' >"$T/usr/sbin/policy-rc.d"; chmod 755 "$T/usr/sbin/policy-rc.d"
  cp -r --preserve=mode "$LAB_SRC/rootfs/." "$T/"
  mount -t proc proc "$T/proc"
  mount -t tmpfs -o mode=755 tmpfs "$T/run"
  mkdir -p "$T/dev/shm" && mount -t tmpfs -o mode=1777 tmpfs "$T/dev/shm"
  cp "$LAB_SRC/rootfs-seed.sh" "$T/tmp/lab-seed.sh"
  chroot "$T" /bin/bash /tmp/lab-seed.sh >"$LAB_CACHE/seed.log" 2>&1 || { tail -30 "$LAB_CACHE/seed.log"; die "seeding the root tree failed (log: $LAB_CACHE/seed.log)"; }
  rm -f "$T/tmp/lab-seed.sh" "$T/usr/sbin/policy-rc.d"
  cleanup
  touch "$T/.lab-complete"
  mv "$T" "$ROOTFS"; T=
  log "root tree ready: $ROOTFS ($(du -sm "$ROOTFS" | cut -f1) MiB)"
  # older trees (another key) go, unless a lab is up (its hosts may use one as their lower
  # layer, from private mount namespaces that /proc/mounts here does not show)
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    for old in "$LAB_CACHE"/rootfs-*; do [ "$old" = "$ROOTFS" ] || rm -rf "$old"; done
  fi
fi
