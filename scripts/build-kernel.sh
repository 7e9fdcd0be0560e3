#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the toolchain chroot: extract Linux 7.3 (once), hook luo-rs into it,
# configure it (tinyconfig + scripts/kernel.config, verified) and build
# bzImage and the uAPI headers in an out-of-tree build directory that is
# kept between runs, so editing a .rs file rebuilds only what changed.
#
# LUO_FLAVOR picks the kernel: "test" (default: luo-rs with its test
# handler and lockdep), or for `make bench` "bench-rs" (luo-rs) and
# "bench-c" (the upstream C LUO), both without debug options; the
# scripts/bench-*.config fragment overrides scripts/kernel.config.

source "$(dirname "$0")/lib.sh"

SRC=/luo/src
WORK=/luo/work
TREE=$WORK/linux
luo_flavor_dirs
JOBS=${LUO_JOBS:-$(nproc)}
TARBALL=/usr/src/linux-source-7.3.tar.xz
PATCHES=("$SRC"/patches/*.patch)

tree_key=$( (dpkg-query -W -f '${Version}' linux-source-7.3; cat "${PATCHES[@]}") | sha256sum | cut -c1-16)

prepare_tree() {
	rm -rf "$TREE.new"
	mkdir -p "$TREE.new"
	tar -xf "$TARBALL" -C "$TREE.new" --strip-components=1
	local p
	for p in "${PATCHES[@]}"; do
		patch -d "$TREE.new" -p1 --forward --quiet < "$p"
	done
	# The repository root is the subsystem directory; the uAPI header of
	# the repository replaces the tree's.
	ln -s "$SRC" "$TREE.new/drivers/misc/liveupdate"
	ln -sf "$SRC/include/uapi/linux/liveupdate.h" "$TREE.new/include/uapi/linux/liveupdate.h"
	echo "$tree_key" > "$TREE.new/.luo-tree"
	rm -rf "$TREE"
	mv "$TREE.new" "$TREE"
	# Objects built from another tree must not be reused.
	rm -rf "$OUT"
}

if [ "$(cat "$TREE/.luo-tree" 2>/dev/null)" != "$tree_key" ]; then
	step "extract and patch Linux $(dpkg-query -W -f '${Version}' linux-source-7.3)" prepare_tree
fi
# The upgrade test's old kernel points these elsewhere while it builds
# (scripts/build-old-kernel.sh); make sure they are this checkout's.
ln -sfn "$SRC" "$TREE/drivers/misc/liveupdate"
ln -sfn "$SRC/include/uapi/linux/liveupdate.h" "$TREE/include/uapi/linux/liveupdate.h"

# Always with clippy: switching CLIPPY on and off would rebuild every crate.
kmake() {
	make -C "$TREE" O="$OUT" LLVM=1 CLIPPY=1 -j"$JOBS" "$@"
}

# The config fragment: scripts/kernel.config, with the flavor's own
# fragment replacing the lines of the options it names.
fragment() {
	local over=$SRC/scripts/$FLAVOR.config
	if [ ! -f "$over" ]; then
		cat "$SRC/scripts/kernel.config"
		return
	fi
	local opts
	opts=$(sed -n -E 's/^(# )?(CONFIG_[A-Z0-9_]+)[= ].*/\2/p' "$over" | paste -sd'|')
	grep -v -E "^(# )?($opts)[= ]" "$SRC/scripts/kernel.config"
	cat "$over"
}
FRAGMENT=$(fragment)

config_key=$( (echo "$tree_key"; echo "$FRAGMENT") | sha256sum | cut -c1-16)

configure() {
	mkdir -p "$OUT"
	kmake -s tinyconfig
	local line opt
	local args=()
	while read -r line; do
		case "$line" in
		CONFIG_*=y) opt=${line%%=*}; args+=(-e "${opt#CONFIG_}") ;;
		CONFIG_*=-1 | CONFIG_*=[0-9]*) opt=${line%%=*}; args+=(--set-val "${opt#CONFIG_}" "${line#*=}") ;;
		"# CONFIG_"*" is not set") opt=${line#\# CONFIG_}; args+=(-d "${opt%% is not set}") ;;
		esac
	done <<< "$FRAGMENT"
	"$TREE/scripts/config" --file "$OUT/.config" "${args[@]}"
	kmake -s olddefconfig
	"$TREE/scripts/config" --file "$OUT/.config" "${args[@]}"
	kmake -s olddefconfig
	local missing=0
	while read -r line; do
		case "$line" in
		CONFIG_*) grep -qx -- "$line" "$OUT/.config" || { log "wanted $line, .config has: $(grep -E "^(# )?${line%%=*}[= ]" "$OUT/.config" || echo nothing)"; missing=1; } ;;
		"# CONFIG_"*" is not set")
			opt=${line#\# }; opt=${opt%% is not set}
			if grep -q "^$opt=" "$OUT/.config"; then log "wanted $opt off, but it is on"; missing=1; fi ;;
		esac
	done <<< "$FRAGMENT"
	[ "$missing" -eq 0 ] || die "kernel config lost wanted options (see above): check dependencies in scripts/kernel.config"
	echo "$config_key" > "$OUT/.luo-config"
}

if [ "$(cat "$OUT/.luo-config" 2>/dev/null)" != "$config_key" ]; then
	step "configure $FLAVOR kernel (tinyconfig + scripts/kernel.config)" configure
fi

build_kernel() {
	local blog=$OUT/.luo-build.log
	kmake bzImage > "$blog" 2>&1 || {
		grep -v -E '^  [A-Z0-9_]+ +|^make(\[[0-9]+\])?: (Entering|Leaving)' "$blog" | tail -80 >&2
		return 1
	}
	# luo-rs must build without a single warning (rustc, clippy or clang).
	if grep -E -A4 '^(warning|error)' "$blog" | grep -q -E 'drivers/misc/liveupdate/' ||
		grep -q -E 'drivers/misc/liveupdate/[^ ]*:[0-9]+:[0-9]+: warning' "$blog"; then
		grep -E -B2 -A12 '^warning' "$blog" >&2
		log "luo-rs compiled with warnings (see above)"
		return 1
	fi
}
step "build $FLAVOR kernel (LLVM=1 CLIPPY=1, -j$JOBS)" build_kernel
step "install uAPI headers" kmake -s headers_install INSTALL_HDR_PATH="$OUT/usr-headers"
log "kernel: $OUT/arch/x86/boot/bzImage ($(stat -c %s "$OUT/arch/x86/boot/bzImage") bytes)"
