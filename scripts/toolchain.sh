#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Create (once) and cache the Debian trixie chroot that holds the whole
# toolchain: clang/lld/llvm 19, bindgen, rustc + rust-src + cargo of one version,
# QEMU and the linux-source-7.3 package. The host needs only apt and root.
#
# The cache directory is named after a hash of this file, so changing the
# package list or a pin builds a new chroot. A chroot is only used once its
# stamp file exists; it is built under a temporary name and renamed into
# place, so a half-made chroot is never mistaken for a good one.
#
# Prints the chroot's path on stdout.

source "$(dirname "$0")/lib.sh"

SUITE=trixie
MIRROR=${LUO_MIRROR:-http://deb.debian.org/debian}

# Exact versions: a rebuild next month gets the same toolchain or fails
# loudly here (update the pins deliberately, then the cache rebuilds).
PINNED=(
	rustc=1.97.1+dfsg1-1~bpo13+1
	rust-src=1.97.1+dfsg1-1~bpo13+1
	rustfmt=1.97.1+dfsg1-1~bpo13+1
	rust-clippy=1.97.1+dfsg1-1~bpo13+1
	libstd-rust-dev=1.97.1+dfsg1-1~bpo13+1
	cargo=1.97.1+dfsg1-1~bpo13+1
	linux-source-7.3=7.3.4-1~bpo13+1
)
# From trixie proper (a stable release: these only get security fixes).
PACKAGES=(
	build-essential bc bison flex libelf-dev libssl-dev cpio kmod python3
	rsync xz-utils clang-19 lld-19 llvm-19 clang lld llvm libclang-dev
	bindgen qemu-system-x86 busybox-static device-tree-compiler libfdt-dev
	libclang-rt-19-dev patch file ca-certificates
)

key=$( (cat "$0"; uname -m) | sha256sum | cut -c1-12)
root=$LUO_CACHE/chroot-$key
stamp=$root/.luo-toolchain-ok

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
	echo "$root"
	exit 0
fi

need_root
command -v mmdebstrap >/dev/null || {
	log "installing mmdebstrap on the host"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >&2
}

mkdir -p "$LUO_CACHE"
# A chroot without a valid stamp is half-made (killed run): start over.
if [ -e "$root" ]; then
	log "discarding incomplete toolchain cache $root"
	safe_rmdir "$root"
fi
tmp=$root.new
safe_rmdir "$tmp"

prefs='Package: rustc rust-src rustfmt rust-clippy libstd-rust-dev libstd-rust-* cargo
Pin: version 1.97.1+dfsg1-1~bpo13+1
Pin-Priority: 990
'

build_chroot() {
	mmdebstrap --mode=root --variant=apt --components=main \
		--aptopt='APT::Install-Recommends "false"' \
		--setup-hook="mkdir -p \"\$1/etc/apt/preferences.d\" && printf '%s' '$prefs' > \"\$1/etc/apt/preferences.d/luo-rs-rust\"" \
		--include="$(IFS=,; echo "${PACKAGES[*]}")" \
		--customize-hook="chroot \"\$1\" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q ${PINNED[*]}" \
		--customize-hook='chroot "$1" apt-get clean' \
		"$SUITE" "$tmp" \
		"deb $MIRROR $SUITE main" \
		"deb $MIRROR $SUITE-updates main" \
		"deb $MIRROR $SUITE-backports main" >&2
}
step "create toolchain chroot (mmdebstrap, $SUITE)" build_chroot

# Verify what we got is what we pinned.
for p in "${PINNED[@]}"; do
	want=${p#*=}
	got=$(chroot "$tmp" dpkg-query -W -f '${Version}' "${p%%=*}" 2>/dev/null || true)
	[ "$got" = "$want" ] || die "${p%%=*}: installed '$got', pinned '$want'"
done
chroot "$tmp" rustc --version >&2
chroot "$tmp" bindgen --version >&2
chroot "$tmp" clang --version | head -1 >&2

# What a kernel build depends on: build caches are keyed by this, not by
# the whole package list, so adding a package keeps the kernel build.
chroot "$tmp" dpkg-query -W rustc rust-src rust-clippy bindgen clang-19 lld-19 llvm-19 \
	libclang-19-dev gcc-14 linux-source-7.3 > "$tmp/.luo-build-versions"
echo "$key" > "$tmp/.luo-toolchain-ok"
mv "$tmp" "$root"
log "toolchain ready: $root ($(du -sh --one-file-system "$root" | cut -f1))"
# Chroots made by older versions of this script are of no further use.
for old in "$LUO_CACHE"/chroot-*; do
	[ "$old" = "$root" ] || [ ! -d "$old" ] || { log "removing stale toolchain $old"; safe_rmdir "$old"; }
done
echo "$root"
