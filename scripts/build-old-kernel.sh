#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the toolchain chroot: build the kernel of the earlier luo-rs
# release COMMIT (argument; its sources in /luo/work/old-src-COMMIT) into
# /luo/work/build-old, for the upgrade test.
#
# The test kernel's tree and config are reused: the kernel tree reaches
# luo-rs through the symlinks drivers/misc/liveupdate and
# include/uapi/linux/liveupdate.h, which point at the old sources for the
# length of this build (and back at /luo/src when it ends, however it
# ends; scripts/build-kernel.sh sets them again before every build too).
# The build directory starts as a copy of the test kernel's, with every
# file of the old sources made newer than it, so only luo-rs, what
# includes its headers, and the link are rebuilt. The result is checked:
# it must write the old handover format, and only that one.

source "$(dirname "$0")/lib.sh"

commit=$1
SRC=/luo/work/old-src-$commit
BASE=/luo/work/build
OUT=/luo/work/build-old
JOBS=${LUO_JOBS:-$(nproc)}
[ -d "$SRC" ] || die "no sources of luo-rs $commit in $SRC"
[ -f "$BASE/arch/x86/boot/bzImage" ] || die "build the test kernel first (scripts/build-kernel.sh)"

# The tree, the test kernel's config and the commit: a new one of any
# starts the old kernel's build again from the test kernel's.
key=$( (cat /luo/work/linux/.luo-tree "$BASE/.luo-config"; echo "$commit") | sha256sum | cut -c1-16)

seed() {
	rm -rf "$OUT"
	cp -a "$BASE" "$OUT.new"
	rm -rf "$OUT.new/drivers/misc/liveupdate"
	find "$SRC" -exec touch {} +
	mv "$OUT.new" "$OUT"
	echo "$key" > "$OUT/.luo-old"
}
if [ "$(cat "$OUT/.luo-old" 2>/dev/null)" != "$key" ]; then
	step "start the old kernel's build from the test kernel's" seed
fi

TREE=/luo/work/linux
point_tree_at() {
	ln -sfn "$1" "$TREE/drivers/misc/liveupdate"
	ln -sfn "$1/include/uapi/linux/liveupdate.h" "$TREE/include/uapi/linux/liveupdate.h"
}

build() {
	local blog=$OUT/.luo-build.log
	trap 'point_tree_at /luo/src' EXIT
	point_tree_at "$SRC"
	make -C "$TREE" O="$OUT" LLVM=1 CLIPPY=1 -j"$JOBS" bzImage > "$blog" 2>&1 || {
		grep -v -E '^  [A-Z0-9_]+ +|^make(\[[0-9]+\])?: (Entering|Leaving)' "$blog" | tail -60 >&2
		return 1
	}
}
step "build the kernel of luo-rs ${commit:0:12} (the release the upgrade test starts from)" build

# It must be the old release: it writes v1 and knows no later format.
if ! grep -q -a 'luo-rs,handover-v1' "$OUT/vmlinux" || grep -q -a 'luo-rs,handover-v2' "$OUT/vmlinux"; then
	die "$OUT/vmlinux is not luo-rs $commit (it should write luo-rs,handover-v1 and know no later format)"
fi
log "old kernel: $OUT/arch/x86/boot/bzImage ($(stat -c %s "$OUT/arch/x86/boot/bzImage") bytes)"
