#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Configure (when the fragments changed) and build one kernel variant,
# incrementally, in its own directory under build/:
#   rust   base + test fragments, Rust vhost_task   -> build/bzImage
#   c      the same with the C vhost_task           -> build/bzImage-c
#          (first built from a copy of the rust directory, see below)
#   debug  rust + lockdep/KASAN/kmemleak            -> build/bzImage-debug
#   debug-c  the same with the C vhost_task          -> build/bzImage-debug-c
#            (for scripts/fault-diff.sh and 'STRESS_IMAGE=build/bzImage-debug-c make stress')
#   modv   rust + MODVERSIONS through gendwarfksyms (7.3 only) -> build/bzImage-modv-7.3
#            (make modversions)
# A tree's own fragment, configs/tree-TREE.config, comes last when there is one. The
# modules (vhost, vhost_net, tun, kvm, ...) are installed, stripped, with depmod's
# index, under build/modules[-VARIANT][-TREE]/lib/modules/RELEASE, which the guests
# load them from (scripts/vm.sh).
. "$(dirname "$0")/lib.sh"

variant=${1:-rust}
case $variant in
rust) frags=(base test) ;;
c) frags=(base test c) ;;
debug) frags=(base test debug) ;;
debug-c) frags=(base test debug c) ;;
modv)
	frags=(base test modversions)
	[ "$TREE" != 6.12 ] || die "the modv kernel needs 7.3: 6.12's CONFIG_RUST depends on !MODVERSIONS"
	;;
*) die "unknown kernel variant '$variant' (rust, c, debug, debug-c or modv)" ;;
esac

need "$(llvm_tool clang)" "$(llvm_tool ld.lld)" "$(llvm_tool llvm-ar)" flex bison bc pahole ccache \
	rustc bindgen depmod
"$ROOT/scripts/get-tree.sh"
"$ROOT/scripts/link-tree.sh"

obj=$(objdir "$variant")
# One build of a directory at a time: a second one waits here for the first.
exec 9>"$obj.lock"
flock 9
# A C variant differs from its Rust twin by CONFIG_VHOST_TASK_RUST alone. Built for the first
# time, it starts as a copy of the twin's built directory: Kbuild then rebuilds only what that
# symbol and the directory's path change (the Rust crates, vhost_task, the links), not the C
# of the whole kernel.
case $variant in
c) twin=$(objdir rust) ;;
debug-c) twin=$(objdir debug) ;;
*) twin= ;;
esac
if [ -n "$twin" ] && [ ! -f "$obj/vmlinux" ] && [ -f "$twin/vmlinux" ]; then
	stage "starting the $variant kernel from a copy of ${twin#"$ROOT"/}"
	(
		flock 8
		rm -rf "$obj"
		cp -a --reflink=auto "$twin" "$obj.tmp"
		rm -f "$obj.tmp/.vhost-task-rs-config" "$obj.tmp"/*.log
		# The commands Kbuild saved name the directory (objtool's, the Rust crates'): as the
		# copy's, they are unchanged, and do not make it rebuild what they built.
		grep -rlIZ --include='*.cmd' "$twin" "$obj.tmp" |
			xargs -0 -r sed -i "s#$twin\([/ :\"']\|\$\)#$obj\1#g"
		mv "$obj.tmp" "$obj"
	) 8>"$twin.lock"
fi
mkdir -p "$obj"
[ ! -f "$ROOT/configs/tree-$TREE.config" ] || frags+=("tree-$TREE")
files=()
for f in "${frags[@]}"; do files+=("$ROOT/configs/$f.config"); done
stamp=$(cat "${files[@]}" "$ROOT/configs/not-in-$TREE.list" 2>/dev/null | sha256sum | cut -d' ' -f1)-$(tree_version "$KDIR")

if [ ! -f "$obj/.config" ] || [ "$(cat "$obj/.vhost-task-rs-config" 2>/dev/null)" != "$stamp" ]; then
	stage "configuring the $variant kernel (tinyconfig + ${frags[*]})"
	logged "$obj/config.log" kmake "$obj" tinyconfig
	# Twice: some options only appear once others are set.
	for _ in 1 2; do
		logged "$obj/config.log" "$KDIR/scripts/kconfig/merge_config.sh" -m -O "$obj" \
			"$obj/.config" "${files[@]}"
		logged "$obj/config.log" kmake "$obj" olddefconfig
	done
	# Every option the fragments ask for (the last one wins) must have stuck.
	bad=()
	while IFS= read -r line; do
		opt=${line%%=*}
		val=${line#*=}
		if [ "$val" = n ]; then
			grep -q "^$opt=" "$obj/.config" && bad+=("$line")
		else
			grep -qx -- "$line" "$obj/.config" || bad+=("$line")
		fi
	done < <(grep -h '^CONFIG_' "${files[@]}" | tac | awk -F= '!seen[$1]++')
	# Except those the tree does not have, listed per tree in configs/not-in-TREE.list.
	absent=$ROOT/configs/not-in-$TREE.list
	really_bad=()
	for line in ${bad[@]+"${bad[@]}"}; do
		why=$(awk -v o="${line%%=*}" '$1 == o { $1 = ""; sub(/^ +/, ""); print }' "$absent" 2>/dev/null)
		if [ -n "$why" ]; then
			info "$line: not in Linux $TREE ($why)"
		else
			really_bad+=("$line")
		fi
	done
	[ ${#really_bad[@]} -eq 0 ] || die "these options did not stick in $obj/.config: ${really_bad[*]}"
	grep -q '^CONFIG_RUST=y' "$obj/.config" ||
		die "CONFIG_RUST is off: 'make -C $KDIR LLVM=${LLVM_SUFFIX:-1} rustavailable' says why"
	echo "$stamp" >"$obj/.vhost-task-rs-config"
fi

if [ -f "$obj/vmlinux" ]; then
	stage "building the $variant kernel of Linux $TREE in ${obj#"$ROOT"/} (incremental)"
else
	stage "building the $variant kernel of Linux $TREE in ${obj#"$ROOT"/} from scratch (10-25 min; 2-4 with a warm ccache)"
fi
start=$(date +%s)
image=$(imagefile "$variant")
logged "$obj/build.log" kmake "$obj" bzImage modules
mods=$(moddir "$image")
rm -rf "$mods.tmp"
logged "$obj/modules_install.log" kmake "$obj" INSTALL_MOD_PATH="$mods.tmp" INSTALL_MOD_STRIP=1 \
	modules_install
rm -rf "$mods"
mv "$mods.tmp" "$mods"
cp "$obj/arch/x86/boot/bzImage" "$image"
info "built $image and its $(find "$mods" -name '*.ko' | wc -l) modules in $(($(date +%s) - start)) s"
