// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers for the user-worker abstraction, kernel::task::user_worker: the
 * macros it needs from <linux/sched.h>, which bindgen turns into
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
