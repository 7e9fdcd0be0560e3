#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the toolchain chroot: build the libFuzzer target fuzz/fdt_decode.rs
# with Debian's rustc (SanitizerCoverage) and clang's libFuzzer runtime,
# seed it with records from the real encoder, run it for LUO_FUZZ_SECONDS
# (default 60) and report executions and crashes. Exit 1 on a crash.

source "$(dirname "$0")/lib.sh"

SRC=/luo/src
OUT=/luo/work/fuzz
SECONDS_TO_RUN=${LUO_FUZZ_SECONDS:-60}
mkdir -p "$OUT/corpus" "$OUT/crashes"

build_fuzzer() {
	# -A dead_code: the targets use only part of the shared modules.
	rustc --edition 2021 --crate-type staticlib -A dead_code -C panic=abort -C opt-level=2 \
		-C debug-assertions -C overflow-checks \
		-C passes=sancov-module \
		-C llvm-args=-sanitizer-coverage-level=4 \
		-C llvm-args=-sanitizer-coverage-inline-8bit-counters \
		-C llvm-args=-sanitizer-coverage-pc-table \
		-C llvm-args=-sanitizer-coverage-trace-compares \
		-o "$OUT/libfdt_decode.a" "$SRC/fuzz/fdt_decode.rs"
	clang++ -fsanitize=fuzzer -o "$OUT/fdt_decode" "$OUT/libfdt_decode.a" -lpthread -ldl -lm
	rustc --edition 2021 -A dead_code -O -o "$OUT/make_seeds" "$SRC/fuzz/make_seeds.rs"
	"$OUT/make_seeds" "$OUT/corpus"
}
step "build fuzz target (rustc + libFuzzer)" build_fuzzer

log "fuzzing the handover decoder for $SECONDS_TO_RUN s"
rc=0
"$OUT/fdt_decode" -max_total_time="$SECONDS_TO_RUN" -use_value_profile=1 -print_final_stats=1 \
	-artifact_prefix="$OUT/crashes/" "$OUT/corpus" > "$OUT/fuzz.log" 2>&1 || rc=$?
grep -E '^#[0-9]+.*(DONE|INITED)|^stat::|SUMMARY|ERROR' "$OUT/fuzz.log" | tail -12
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/fuzz.log")
crashes=$(find "$OUT/crashes" -type f | wc -l)
echo "fuzz: ${runs:-0} executions in ${SECONDS_TO_RUN} s, corpus $(find "$OUT/corpus" -type f | wc -l) inputs, $crashes crash files, libFuzzer exit $rc"
if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
	tail -40 "$OUT/fuzz.log"
	die "the fuzzer found a crash: inputs in $OUT/crashes"
fi
