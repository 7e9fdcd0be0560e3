# SPDX-License-Identifier: GPL-2.0
# Shared helpers for luo-rs's build and VM scripts: timed steps, the cache
# location, and safe removal of cache directories that may hold mounts.

set -euo pipefail

LUO_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything built or downloaded lives here, outside the repository.
LUO_CACHE=${LUO_CACHE:-/var/cache/luo-rs}

log() { printf '[luo] %s\n' "$*" >&2; }
die() { printf '[luo] error: %s\n' "$*" >&2; exit 1; }

# step NAME CMD...: run CMD, announcing it and how long it took.
step() {
	local name=$1 t0 rc=0
	shift
	t0=$(date +%s)
	log "$name ..."
	# As an async job, so that `set -e` stays in force inside CMD (it is
	# ignored in any command whose status is tested with || or if).
	"$@" &
	wait $! || rc=$?
	if [ "$rc" -ne 0 ]; then
		log "$name FAILED after $(($(date +%s) - t0)) s (exit $rc)"
		return "$rc"
	fi
	log "$name done in $(($(date +%s) - t0)) s"
}

# Inside the chroot: cargo's home (the crates.io cache, installed tools) in
# the build cache, trusting the host's CAs that chroot.sh copied there.
cargo_env() {
	export CARGO_HOME=/luo/work/cargo
	if [ -f /luo/work/host-ca.crt ]; then
		export CARGO_HTTP_CAINFO=/luo/work/host-ca.crt
	fi
}

# safe_rmdir DIR: delete a cache directory, refusing while anything is still
# mounted below it (a bind-mounted checkout would be deleted with it).
safe_rmdir() {
	local dir=$1
	[ -e "$dir" ] || return 0
	local real
	real=$(realpath "$dir")
	if findmnt -rn -o TARGET | awk -v d="$real" '$0 == d || index($0, d "/") == 1 { f = 1 } END { exit !f }'; then
		die "refusing to delete $dir: something is mounted below it (see findmnt)"
	fi
	rm -rf --one-file-system "$dir"
}

need_root() {
	[ "$(id -u)" -eq 0 ] || die "this step needs root (mmdebstrap, chroot, mounts)"
}

# Inside the chroot: where the kernel build (OUT) and the initramfs (STAGE)
# of LUO_FLAVOR live: "test" (default), "debug" (the test kernel with KASAN,
# kmemleak and other checkers), "bench-rs" or "bench-c".
luo_flavor_dirs() {
	FLAVOR=${LUO_FLAVOR:-test}
	case "$FLAVOR" in
	test) OUT=/luo/work/build STAGE=/luo/work/initramfs ;;
	debug | bench-rs | bench-c) OUT=/luo/work/build-$FLAVOR STAGE=/luo/work/initramfs-$FLAVOR ;;
	*) die "unknown LUO_FLAVOR $FLAVOR" ;;
	esac
}
