# SPDX-License-Identifier: GPL-2.0
# kunit.py --qemu_config for the project's own x86_64 builds: two vCPUs so that
# the race cases run in parallel, multi-threaded TCG (KVM hangs on these
# machines), and the same serial console as kunit.py's stock x86_64 config.
# QEMU is tests/kunit/bin/qemu-system-x86_64-tcg (in PATH), which drops the
# "-accel kvm -accel hvf -accel tcg" that 7.3's kunit.py adds: with /dev/kvm
# present QEMU would pick KVM.
from ..qemu_config import QemuArchParams

QEMU_ARCH = QemuArchParams(linux_arch='x86_64',
			   kconfig='''
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y''',
			   qemu_arch='x86_64-tcg',
			   kernel_path='arch/x86/boot/bzImage',
			   kernel_command_line='console=ttyS0 panic=-1',
			   extra_qemu_params=['-bios', 'qboot.rom', '-m', '1G',
					      '-smp', '2', '-accel', 'tcg,thread=multi',
					      '-cpu', 'max'])
