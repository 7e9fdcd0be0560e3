#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make fuzz`: run the cargo-fuzz targets; LUO_FUZZ_SECONDS sets how long (each).
source "$(dirname "$0")/chroot.sh"
# cargo fetches from crates.io over TLS: trust what the host trusts (a
# host behind a TLS-inspecting proxy has its CA there, the chroot not).
ca=
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
	cp /etc/ssl/certs/ca-certificates.crt "$LUO_WORK/host-ca.crt"
	ca=/luo/work/host-ca.crt
fi
in_chroot env LUO_FUZZ_SECONDS="${LUO_FUZZ_SECONDS:-60}" ${ca:+CARGO_HTTP_CAINFO=$ca} \
	/luo/src/scripts/fuzz-in-chroot.sh
