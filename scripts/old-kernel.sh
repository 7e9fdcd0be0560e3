#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the kernel of the earlier luo-rs release named in
# scripts/upgrade-from, for the upgrade test. Its sources come from this
# repository's history (exported once into the build cache); it is built
# on the same Linux tree and config as the test kernel, which must be
# built first (scripts/build-old-kernel.sh says how).

source "$(dirname "$0")/chroot.sh"

commit=$(sed -n 's/^commit \([0-9a-f]\{40\}\)$/\1/p' "$LUO_REPO/scripts/upgrade-from")
[ -n "$commit" ] || die "scripts/upgrade-from names no commit"
src=$LUO_WORK/old-src-$commit

export_sources() {
	if ! git -C "$LUO_REPO" cat-file -e "$commit^{commit}" 2>/dev/null; then
		# A shallow clone: fetch just that commit.
		git -C "$LUO_REPO" fetch -q --depth=1 origin "$commit" ||
			die "commit $commit is not in this clone and cannot be fetched (the upgrade test needs it)"
	fi
	rm -rf "$src.new"
	mkdir -p "$src.new"
	git -C "$LUO_REPO" archive "$commit" | tar -x -C "$src.new"
	mv "$src.new" "$src"
}
if [ ! -d "$src" ]; then
	step "export luo-rs ${commit:0:12} from git" export_sources
fi
in_chroot /luo/src/scripts/build-old-kernel.sh "$commit"
