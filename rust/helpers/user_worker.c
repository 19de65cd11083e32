// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers for the user-worker abstraction, kernel::task::user_worker: the
 * macros it needs from <linux/sched.h> and <linux/lockdep.h>, which bindgen
 * turns into bindings::set_current_state(), bindings::__set_current_state(),
 * bindings::lockdep_init_map(), bindings::lock_map_acquire() and
 * bindings::lock_map_release(). The abstraction calls the last three only
 * with CONFIG_LOCKDEP.
 */

#include <linux/delay.h>
#include <linux/kernel.h>
#include <linux/lockdep.h>
#include <linux/sched.h>
#include <linux/string.h>

__rust_helper void rust_helper_set_current_state(unsigned int state)
{
	set_current_state(state);
}

__rust_helper void rust_helper___set_current_state(unsigned int state)
{
	__set_current_state(state);
}

__rust_helper void rust_helper_lockdep_init_map(struct lockdep_map *map,
						const char *name,
						struct lock_class_key *key)
{
	lockdep_init_map(map, name, key, 0);
}

__rust_helper void rust_helper_lock_map_acquire(struct lockdep_map *map)
{
	lock_map_acquire(map);
}

__rust_helper void rust_helper_lock_map_release(struct lockdep_map *map)
{
	lock_map_release(map);
}

#ifdef CONFIG_USER_WORKER_EXIT_DELAY_TEST
/*
 * Called by a user worker right after it has reported its exit, when its
 * owner may already have freed what it made the worker with, and unloaded the
 * module it came from. A worker named "exit-delay..." sleeps there, then warns
 * if the code it returns to is gone. Not inlined, so that its return address
 * is its caller's.
 */
noinline void rust_helper_user_worker_exit_delay_test(void)
{
	unsigned long ret = _RET_IP_;

	if (strncmp(current->comm, "exit-delay", 10))
		return;
	msleep(50);
	WARN(!kernel_text_address(ret),
	     "user worker %d returns to %pS after its exit, which is no longer kernel or module text\n",
	     task_pid_nr(current), (void *)ret);
}
#endif
