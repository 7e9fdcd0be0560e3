#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: luo_bench (selftests/vm/luo_bench.c) on luo-rs and on the
# upstream C LUO, each built from the same 7.3 tree without debug options,
# in the same QEMU with the same command line (but liveupdate=on, which
# the C LUO needs). Every scenario runs LUO_BENCH_RUNS times (default 4)
# on each kernel, the two kernels interleaved (rs, C, then C, rs, ...) so
# that a drift of the host hits both alike; scripts/bench-report.py prints
# min, median, max and the ratio of each pair of runs, and writes them all
# to logs-bench/bench.json. Documentation/performance.rst explains it.

source "$(dirname "$0")/chroot.sh"

runs=${LUO_BENCH_RUNS:-4}
# Scenario name, then luo_bench's arguments.
scenarios=(
	"empty:scenario=empty"
	"big-64m:scenario=big size=64"
	"big-1g:scenario=big size=1024"
	"big-1g-noprep:scenario=big size=1024 prepare=0"
	"files:scenario=files"
	"parallel:scenario=parallel size=128"
)
# Scenarios profiled (LUO_BENCH_PROFILE=0 skips it).
profiled=("big-1g:scenario=big size=1024" "files:scenario=files")

# LUO_BENCH_ONLY=files,big-64m runs only those scenarios (a quick look
# while working; the published table comes from a run of all of them).
only() { # keeps the entries of array $1 whose name LUO_BENCH_ONLY lists
	local -n list=$1
	local kept=() s
	[ -z "${LUO_BENCH_ONLY:-}" ] && return
	for s in "${list[@]}"; do
		case ",$LUO_BENCH_ONLY," in *",${s%%:*},"*) kept+=("$s") ;; esac
	done
	list=("${kept[@]}")
}
only scenarios
only profiled
if [ ${#scenarios[@]} -eq 0 ]; then
	echo "LUO_BENCH_ONLY=$LUO_BENCH_ONLY names no scenario" >&2
	exit 2
fi

for flavor in bench-rs bench-c; do
	in_chroot env LUO_FLAVOR=$flavor /luo/src/scripts/build-kernel.sh
	in_chroot env LUO_FLAVOR=$flavor /luo/src/scripts/build-tests.sh
done
logs=$LUO_WORK/logs-bench
rm -rf "$logs"
mkdir -p "$logs"

run_one() { # FLAVOR SCENARIO ARGS RUN (a number, or "profile")
	local flavor=$1 name=$2 args=$3 run=$4 extra
	# The C LUO is off unless asked for on the command line. earlycon: the
	# new kernel's banner is on the console as soon as it starts.
	extra=earlycon=uart8250,io,0x3f8,115200
	[ "$flavor" = bench-c ] && extra+=" liveupdate=on"
	[ "$run" = profile ] && args+=" profile=1"
	for a in $args; do
		extra+=" luotest.$a"
	done
	local base=/luo/work/logs-bench/$flavor-$name-$run
	step "bench run $run/$runs: $name on $flavor" in_chroot env LUO_FLAVOR=$flavor \
		LUO_VM_MEM=3G LUO_VM_TIMEOUT=900 LUO_VM_STAMPS=$base.stamps \
		/luo/src/scripts/run-vm.sh "$base.log" luo_bench "$extra"
}

t0=$(date +%s)
for run in $(seq "$runs"); do
	order=(bench-rs bench-c)
	[ $((run % 2)) -eq 0 ] && order=(bench-c bench-rs)
	for s in "${scenarios[@]}"; do
		for flavor in "${order[@]}"; do
			run_one "$flavor" "${s%%:*}" "${s#*:}" "$run"
		done
	done
done
log "bench: $runs runs of ${#scenarios[@]} scenarios on 2 kernels in $(($(date +%s) - t0)) s"
# Where the time goes: one more run per kernel with the function profiler
# on around the RETRIEVEs (its overhead makes those runs' times useless).
if [ "${LUO_BENCH_PROFILE:-1}" = 1 ]; then
	for s in "${profiled[@]}"; do
		for flavor in bench-rs bench-c; do
			run_one "$flavor" "${s%%:*}" "${s#*:}" profile
		done
	done
	log "bench: function profiles in $logs/*-profile.log (bench-profile: lines)"
fi
python3 "$LUO_REPO/scripts/bench-report.py" "$logs"
