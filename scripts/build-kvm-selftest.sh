#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build KVM's own selftest of the NX huge page recovery thread from the selected tree (TREE=,
# KDIR=): tools/testing/selftests/kvm/x86_64/nx_huge_pages_test (x86/ from 7.3 on) and its
# wrapper nx_huge_pages_test.sh, with gcc, as upstream builds them. Prints the directory that
# holds the two side by side, as the wrapper expects:
#   build/selftests-kvm-6.12/{nx_huge_pages_test,nx_huge_pages_test.sh}   (TREE=6.12)
#   build/selftests-kvm-7.3/...                                           (TREE=7.3)
# with the tree's UAPI headers (make headers) in kbuild/usr/ and the objects in obj/ below
# it; nothing is written into the tree. Fails with the reason, the build's log in build/log/.
. "$(dirname "$0")/lib.sh"

need gcc make
[ -f "$KDIR/Makefile" ] || die "no kernel tree at $KDIR (run scripts/get-tree.sh or make setup)"
sdir=$KDIR/tools/testing/selftests/kvm
arch=
for a in x86 x86_64; do
	if [ -f "$sdir/$a/nx_huge_pages_test.c" ]; then
		arch=$a
		break
	fi
done
[ -n "$arch" ] || die "$sdir has no x86/ or x86_64/nx_huge_pages_test.c: not a tree with KVM's NX huge page selftest"
[ -f "$sdir/$arch/nx_huge_pages_test.sh" ] || die "no wrapper $sdir/$arch/nx_huge_pages_test.sh"

tag=-$TREE
[ "$KDIR" = "$DEFAULT_KDIR" ] || tag=$tag$(kdir_tag)
out=$BUILD/selftests-kvm$tag
log=$BUILD/log/selftests-kvm$tag.log
mkdir -p "$out"

# The selftests build with the kernel's own UAPI headers: 'make headers' of the tree into
# a build directory of their own ($out/kbuild/usr/include; headers_install would only copy
# them, with rsync), so that the tree stays clean for O= builds. gcc, not the kernels'
# clang: a selftest is a user program, built as upstream's CI builds it.
unset LLVM CROSS_COMPILE
logged "$log" make -C "$KDIR" O="$out/kbuild" ARCH=x86_64 -j"$JOBS" headers ||
	die "make headers of $KDIR failed (log: $log)"
hdr=$out/kbuild/usr
[ -f "$hdr/include/linux/kvm.h" ] || die "make headers left no $hdr/include/linux/kvm.h"

# Only the one test and the library it links: the kvm Makefile's targets are its outputs.
logged "$log.test" make -C "$sdir" OUTPUT="$out/obj" INSTALL_HDR_PATH="$hdr" \
	KHDR_INCLUDES="-isystem $hdr/include" -j"$JOBS" "$out/obj/$arch/nx_huge_pages_test" ||
	die "building $arch/nx_huge_pages_test with gcc failed (log: $log.test)"
bin=$out/obj/$arch/nx_huge_pages_test
[ -x "$bin" ] || die "the selftest build left no $bin (log: $log.test)"

# The wrapper runs "$(dirname $0)/nx_huge_pages_test": keep the two together.
install -m 0755 "$bin" "$out/nx_huge_pages_test"
install -m 0755 "$sdir/$arch/nx_huge_pages_test.sh" "$out/nx_huge_pages_test.sh"
echo "$out"
