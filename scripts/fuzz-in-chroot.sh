#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the toolchain chroot: run the cargo-fuzz (libFuzzer) targets of
# fuzz/ (the handover decoder, the memfd header decoder) for
# LUO_FUZZ_SECONDS each (default 60), seeded with records from the real
# encoders, and report executions and crashes. Exit 1 on a crash.
#
# cargo-fuzz itself comes from crates.io, pinned, installed once into the
# build cache. It drives Debian's rustc; RUSTC_BOOTSTRAP lets it pass the
# -Z flags it needs.

source "$(dirname "$0")/lib.sh"

SRC=/luo/src
OUT=/luo/work/fuzz
SECONDS_TO_RUN=${LUO_FUZZ_SECONDS:-60}
CARGO_FUZZ_VERSION=0.13.2
cargo_env
export PATH=$CARGO_HOME/bin:$PATH RUSTC_BOOTSTRAP=1
mkdir -p "$OUT/crashes"

install_cargo_fuzz() {
	cargo install --quiet --locked --root "$CARGO_HOME" --version "$CARGO_FUZZ_VERSION" cargo-fuzz
}
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
	step "install cargo-fuzz $CARGO_FUZZ_VERSION (crates.io)" install_cargo_fuzz
fi

cd "$SRC"
fuzz() { # COMMAND TARGET [ARGS]
	local cmd=$1
	shift
	cargo fuzz "$cmd" --fuzz-dir "$SRC/fuzz" --sanitizer none --debug-assertions \
		--target-dir "$OUT/target" "$@"
}
build_targets() {
	fuzz build fdt_decode
	fuzz build memfd_header
	rustc --edition 2021 -A dead_code -O -o "$OUT/make_seeds" "$SRC/fuzz/make_seeds.rs"
	rm -rf "$OUT/corpus"
	mkdir -p "$OUT/corpus/fdt_decode" "$OUT/corpus/memfd_header"
	"$OUT/make_seeds" "$OUT/corpus"
}
step "build fuzz targets (cargo fuzz build)" build_targets

failed=0
for target in fdt_decode memfd_header; do
	log "fuzzing $target for $SECONDS_TO_RUN s"
	rc=0
	fuzz run "$target" "$OUT/corpus/$target" -- \
		-max_total_time="$SECONDS_TO_RUN" -use_value_profile=1 -print_final_stats=1 \
		-artifact_prefix="$OUT/crashes/$target-" > "$OUT/$target.log" 2>&1 || rc=$?
	grep -E '^#[0-9]+.*(DONE|INITED)|SUMMARY|ERROR' "$OUT/$target.log" | tail -4
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/$target.log")
	crashes=$(find "$OUT/crashes" -name "$target-*" -type f | wc -l)
	echo "fuzz: $target: ${runs:-0} executions in ${SECONDS_TO_RUN} s, corpus $(find "$OUT/corpus/$target" -type f | wc -l) inputs, $crashes crash files, libFuzzer exit $rc"
	if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
		tail -40 "$OUT/$target.log"
		failed=1
	fi
done
[ "$failed" -eq 0 ] || die "a fuzzer found a crash: inputs in $OUT/crashes"
