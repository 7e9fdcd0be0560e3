# SPDX-License-Identifier: GPL-2.0
# in_chroot CMD...: run CMD inside the toolchain chroot with the repository
# at /luo/src and the build cache at /luo/work. All mounts live in a private
# mount namespace that dies with the command, so a killed run leaves none.

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LUO_ROOT=$("$LUO_REPO/scripts/toolchain.sh")
# Build caches are keyed by the compiler and kernel source versions.
LUO_WORK=$LUO_CACHE/work-$(sha256sum < "$LUO_ROOT/.luo-build-versions" | cut -c1-12)
mkdir -p "$LUO_WORK" "$LUO_ROOT/luo/src" "$LUO_ROOT/luo/work"
# cargo fetches from crates.io over TLS: trust what the host trusts (a
# host behind a TLS-inspecting proxy has its CA there, the chroot not).
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
	cp /etc/ssl/certs/ca-certificates.crt "$LUO_WORK/host-ca.crt"
fi
# Build caches of other compiler versions are of no further use.
for old in "$LUO_CACHE"/work-*; do
	[ "$old" = "$LUO_WORK" ] || [ ! -d "$old" ] || { log "removing stale build cache $old"; safe_rmdir "$old"; }
done

in_chroot() {
	unshare -m --propagation private -- bash -euc '
		root=$1 repo=$2 work=$3
		shift 3
		mount --bind "$repo" "$root/luo/src"
		mount --bind "$work" "$root/luo/work"
		mount -t proc proc "$root/proc"
		mount --rbind /sys "$root/sys"
		mount --rbind /dev "$root/dev"
		exec chroot "$root" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" \
			PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
			CI="${CI:-}" LUO_JOBS="${LUO_JOBS:-}" LUO_VM_TIMEOUT="${LUO_VM_TIMEOUT:-}" "$@"
	' _ "$LUO_ROOT" "$LUO_REPO" "$LUO_WORK" "$@"
}
