#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make stress: the stress suite at full scale on the debug kernel (KASAN, lockdep,
# kmemleak, fault injection), or on another image, then trinity on the debug kernels of both
# implementations. Prints how long it took and ends with "N passed, N failed".
#   stress.sh [--scale S] [--image F] [FILTER]
# --scale  multiplies every count (default 1.0; make test runs 0.1)
# --image  the kernel to boot (default: build/bzImage-debug; also STRESS_IMAGE=)
# FILTER   runs only the cases whose names contain it (or one of its comma-separated parts)
# Trinity (tests/e2e/src/trinity.rs) runs ten seeds of 100,000 system calls times the scale on
# each implementation: a million at scale 1.0; not with --image, STRESS_IMAGE or FILTER.
. "$(dirname "$0")/lib.sh"

scale=${STRESS_SCALE:-1.0}
image=${STRESS_IMAGE:-}
image_given=$image
filter=
while [ $# -gt 0 ]; do
	case $1 in
	--scale) scale=$2; shift 2 ;;
	--image) image=$2 image_given=$2; shift 2 ;;
	-*) die "usage: stress.sh [--scale S] [--image F] [FILTER]" ;;
	*) filter=$1; shift ;;
	esac
done
awk -v s="$scale" 'BEGIN { exit !(s + 0 > 0) }' || die "--scale needs a positive number, not '$scale'"

# The suite is named after the kernel variant the image is: stress-debug, stress-rust, ...
if [ -z "$image" ]; then
	variant=debug
	[ -f "$(imagefile debug)" ] || "$ROOT/scripts/build-kernel.sh" debug
	image=$(imagefile debug)
else
	[ -f "$image" ] || die "no kernel image $image"
	case $(basename "$image") in
	bzImage) variant=rust ;;
	bzImage-*) variant=$(basename "$image" | sed 's/^bzImage-//') ;;
	*) variant=$(basename "$image") ;;
	esac
	# test.sh runs a stress suite per kernel variant of build-kernel.sh.
	case $variant in
	rust | c | debug | debug-c) ;;
	*) die "stress: $image is not a kernel of build-kernel.sh (bzImage, bzImage-c, bzImage-debug, bzImage-debug-c)" ;;
	esac
fi

suites=("stress-$variant")
[ -n "$image_given" ] || [ -n "$filter" ] || suites+=(trinity-debug trinity-debug-c)
mkdir -p "$BUILD/log"
start=$(date +%s)
rc=0
STRESS_IMAGE=$(realpath "$image") STRESS_SCALE=$scale STRESS_FILTER=$filter \
	TRINITY_CALLS=$(awk -v s="$scale" 'BEGIN { printf "%d", 100000 * s }') \
	TRINITY_SEEDS=1,2,3,4,5,6,7,8,9,10 \
	"$ROOT/scripts/test.sh" "${suites[@]}" >"$BUILD/log/stress-summary.txt" || rc=$?
secs=$(($(date +%s) - start))
info "stress at scale $scale on $image took $((secs / 60)) min $((secs % 60)) s"
info "cases and their notes: build/log/stress-$variant.log$([ ${#suites[@]} = 1 ] || echo ", trinity-debug.log, trinity-debug-c.log")"
cat "$BUILD/log/stress-summary.txt"
exit "$rc"
