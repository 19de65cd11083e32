// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers for the Rust vhost_task: the macros it needs from <linux/sched.h>.
 * Linked into the tree as rust/helpers/vhost_task_rs.c and included from
 * rust/helpers/helpers.c, so bindgen turns them into
 * bindings::set_current_state() and bindings::__set_current_state().
 */

#include <linux/sched.h>

void rust_helper_set_current_state(unsigned int state)
{
	set_current_state(state);
}

void rust_helper___set_current_state(unsigned int state)
{
	__set_current_state(state);
}
