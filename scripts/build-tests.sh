#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the toolchain chroot: build the VM test programs (static, against
# the uAPI headers of the built kernel and the tree's kselftest harness)
# and the two initramfs images: the inner one (init, busybox, tests,
# /boot/bzImage) and the outer one, which adds /boot/initrd (the inner
# one) so that a test can kexec into the same kernel.

source "$(dirname "$0")/lib.sh"

SRC=/luo/src
WORK=/luo/work
TREE=$WORK/linux
luo_flavor_dirs

UPSTREAM=$TREE/tools/testing/selftests/liveupdate
shopt -s nullglob

build_programs() {
	rm -rf "$STAGE"
	mkdir -p "$STAGE/root/tests" "$STAGE/root/bin" "$STAGE/root/boot" "$STAGE/root/upstream"
	local c
	for c in "$SRC"/selftests/*.c "$SRC"/selftests/vm/*.c; do
		gcc -static -O2 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-format-truncation -Wno-sign-compare \
			-isystem "$OUT/usr-headers/include" \
			-I "$TREE/tools/testing/selftests" -I "$SRC/selftests" \
			-o "$STAGE/root/tests/$(basename "$c" .c)" "$c"
	done
	# Upstream's own selftests, unmodified, as their Makefile builds them
	# (with its lib/), against luo-rs's uAPI header.
	local up=(-static -O2 -Wall -Wno-unused-function -isystem "$OUT/usr-headers/include"
		-I "$TREE/tools/testing/selftests" -I "$UPSTREAM/lib/include")
	gcc "${up[@]}" -c -o "$STAGE/lu_utils.o" "$UPSTREAM/lib/lu_utils.c"
	for c in liveupdate luo_kexec_simple luo_multi_session luo_stress_files luo_stress_sessions; do
		gcc "${up[@]}" -D_GNU_SOURCE -o "$STAGE/root/upstream/$c" "$UPSTREAM/$c.c" "$STAGE/lu_utils.o"
	done
	install -m 755 "$SRC"/selftests/upstream/*_test "$STAGE/root/tests/"
	install -m 755 "$SRC/selftests/upstream/kexec_flow" "$STAGE/root/tests/upstream_kexec_flow"
}
step "build VM test programs" build_programs

# The user-space tools (userspace/), static, for the VM's /bin.
build_userspace() {
	cargo_env
	local target=x86_64-unknown-linux-gnu
	# --target: the static flag is for the tools, not build scripts or
	# proc macros (which the host runs). Static glibc warns that name and
	# user lookups (getaddrinfo, getpwuid_r) would need its shared NSS
	# modules: the tools do neither, so the linker's notes are not shown.
	CARGO_TARGET_DIR=/luo/work/userspace-target RUSTFLAGS="-C target-feature=+crt-static -A linker_messages" \
		cargo build --locked --release --target "$target" \
		--manifest-path "$SRC/userspace/Cargo.toml" --workspace --bins --example vmm
	local out=/luo/work/userspace-target/$target/release
	install -m 755 "$out/luoctl" "$out/luod" "$STAGE/root/bin/"
	# luod's stand-in VMM (userspace/luod/examples/vmm.rs), for its tests.
	install -m 755 "$out/examples/vmm" "$STAGE/root/bin/luod-vmm"
}
step "build user-space tools (static)" build_userspace

make_cpio() { # DIR OUTPUT
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) > "$2"
}

build_initramfs() {
	local root=$STAGE/root
	mkdir -p "$root"/{dev,proc,sys,tmp}
	mknod -m 600 "$root/dev/console" c 5 1
	install -m 755 "$SRC/selftests/vm/init" "$root/init"
	install -m 755 "$SRC/selftests/vm/demo" "$root/tests/demo"
	install -m 755 /bin/busybox "$root/bin/busybox"
	# The inner image (what the second kernel boots) carries the kernel
	# but no initrd of its own: enough to try a kexec that must be refused.
	install -m 644 "$OUT/arch/x86/boot/bzImage" "$root/boot/bzImage"
	make_cpio "$root" "$STAGE/inner.cpio"
	install -m 644 "$STAGE/inner.cpio" "$root/boot/initrd"
	make_cpio "$root" "$STAGE/initrd.cpio"
}
step "build initramfs" build_initramfs
log "initramfs: $STAGE/initrd.cpio ($(stat -c %s "$STAGE/initrd.cpio") bytes)"
