/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The Rust KUnit cases of tests/kunit/rust_cases.rs, built into the Rust
 * vhost_task crate, and what they need from vhost_task_kunit.c.
 */
#ifndef _VHOST_TASK_RUST_CASES_H
#define _VHOST_TASK_RUST_CASES_H

#include <kunit/test.h>

int vhost_task_test_become_limited_user(unsigned long nproc);

/* A case vhost_task_rust_test_<tc>() of rust_cases.rs, reported as <tc>. */
#define VT_RUST_CASE(tc)						\
	{ .run_case = vhost_task_rust_test_##tc, .name = #tc,		\
	  .module_name = KBUILD_MODNAME }

/* The exported wrapper of case tc of rust_cases.rs (trees without #[kunit_tests]). */
#define VT_RUST_CASE_DECL(tc) void vhost_task_rust_test_##tc(struct kunit *test)

VT_RUST_CASE_DECL(new_user_worker_runs_nothing_until_started);
VT_RUST_CASE_DECL(user_worker_function_runs_in_the_worker_task);
VT_RUST_CASE_DECL(user_worker_data_is_dropped_by_the_handle_after_the_exit);
VT_RUST_CASE_DECL(dropping_a_never_started_user_worker_runs_nothing);
VT_RUST_CASE_DECL(user_worker_has_exited_only_after_the_function_returned);
VT_RUST_CASE_DECL(user_worker_task_reference_outlives_the_thread);
VT_RUST_CASE_DECL(user_worker_context_sees_no_signal_when_none_was_sent);
VT_RUST_CASE_DECL(user_worker_create_failure_returns_eagain_and_frees_data);
VT_RUST_CASE_DECL(user_worker_wait_sleeps_until_woken_with_the_condition_true);
VT_RUST_CASE_DECL(vhost_work_may_sleep_after_set_running);
VT_RUST_CASE_DECL(doc_example_of_vhost_work);
VT_RUST_CASE_DECL(doc_example_of_vhost_task);
VT_RUST_CASE_DECL(vhost_task_wake_reruns_work);
VT_RUST_CASE_DECL(vhost_task_drop_stops_and_waits_for_the_worker);
VT_RUST_CASE_DECL(vhost_task_work_is_dropped_by_stop_in_the_stopping_thread);
VT_RUST_CASE_DECL(never_started_vhost_task_drops_work_unrun);
VT_RUST_CASE_DECL(c_abi_rejects_null_arguments_with_einval);
VT_RUST_CASE_DECL(c_abi_stop_of_a_never_started_task_returns);
VT_RUST_CASE_DECL(c_abi_start_twice_is_ignored);

#endif /* _VHOST_TASK_RUST_CASES_H */
