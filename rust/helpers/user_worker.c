// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers for the user-worker abstraction, kernel::task::user_worker: the
 * macros it needs from <linux/sched.h> and <linux/lockdep.h>, which bindgen
 * turns into bindings::set_current_state(), bindings::__set_current_state(),
 * bindings::lockdep_init_map(), bindings::lock_map_acquire() and
 * bindings::lock_map_release(). Without CONFIG_LOCKDEP the last three do
 * nothing, and struct lockdep_map is empty.
 */

#include <linux/lockdep.h>
#include <linux/sched.h>

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
