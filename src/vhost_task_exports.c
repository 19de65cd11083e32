// SPDX-License-Identifier: GPL-2.0
/*
 * Exports of the Rust vhost_task.
 *
 * vhost_task_create(), vhost_task_start(), vhost_task_stop() and
 * vhost_task_wake() are defined in Rust (c_abi.rs) with the prototypes of
 * <linux/sched/vhost_task.h>; Rust code cannot emit EXPORT_SYMBOL_GPL(), so
 * they are exported here for modular vhost and KVM.
 */

#include <linux/export.h>
#include <linux/sched/vhost_task.h>

EXPORT_SYMBOL_GPL(vhost_task_create);
EXPORT_SYMBOL_GPL(vhost_task_start);
EXPORT_SYMBOL_GPL(vhost_task_stop);
EXPORT_SYMBOL_GPL(vhost_task_wake);
