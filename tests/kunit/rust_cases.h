/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The Rust KUnit cases of tests/kunit/rust_cases.rs, built into the Rust
 * vhost_task crate, and what they need from vhost_task_kunit.c.
 */
#ifndef _VHOST_TASK_RUST_CASES_H
#define _VHOST_TASK_RUST_CASES_H

#include <kunit/test.h>

int vhost_task_test_become_limited_user(unsigned long nproc);

#define VT_RUST_CASE(tc) \
	{ .run_case = vhost_task_rust_test_##tc, .name = #tc, \
	  .module_name = KBUILD_MODNAME }

#define VT_RUST_CASES(X)						\
	X(new_user_worker_runs_nothing_until_started)			\
	X(user_worker_closure_runs_in_the_worker_task)			\
	X(user_worker_closure_is_dropped_after_it_returns)		\
	X(dropping_a_never_started_user_worker_drops_closure_unrun)	\
	X(user_worker_has_exited_only_after_the_closure_returned)	\
	X(user_worker_task_reference_outlives_the_thread)		\
	X(user_worker_context_sees_no_signal_when_none_was_sent)	\
	X(user_worker_create_failure_returns_eagain_and_drops_closure)	\
	X(vhost_task_wake_reruns_work)					\
	X(vhost_task_drop_stops_and_waits_for_the_worker)		\
	X(vhost_task_stop_drops_the_work_before_returning)		\
	X(never_started_vhost_task_drops_work_unrun)			\
	X(c_abi_rejects_null_arguments_with_einval)			\
	X(c_abi_stop_of_a_never_started_task_returns)			\
	X(c_abi_start_twice_is_ignored)

#define VT_RUST_DECLARE(tc) void vhost_task_rust_test_##tc(struct kunit *test);
VT_RUST_CASES(VT_RUST_DECLARE)

#define VHOST_TASK_RUST_CASES VT_RUST_CASES(VT_RUST_CASE_COMMA)
#define VT_RUST_CASE_COMMA(tc) VT_RUST_CASE(tc),

#endif /* _VHOST_TASK_RUST_CASES_H */
