// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for vhost_task.
 *
 * Suite "vhost_task" drives the C ABI of <linux/sched/vhost_task.h> exactly
 * as vhost and KVM call it, and passes against both implementations: the
 * upstream kernel/vhost_task.c and the Rust one (CONFIG_VHOST_TASK_RUST). Its
 * cases check everything a kthread can observe: the worker's lifecycle, its
 * task fields, the wake/stop protocol under races, and the failure paths of
 * copy_process().
 *
 * Suite "vhost_task_rust" runs the Rust cases of tests/kunit/rust_cases.rs,
 * which test the Rust user-worker and vhost task abstractions directly, and
 * what the Rust C ABI does beyond upstream (bad arguments, stopping a task
 * that was never started).
 *
 * Not tested here: the SIGKILL path (handle_sigkill). KUnit cases run in
 * kthreads whose signal handlers are all SIG_IGN, and a worker created with
 * CLONE_SIGHAND shares them, so a kill never reaches it. The end-to-end
 * suite (tests/e2e) kills real vhost owners from user space instead.
 */

#include <kunit/test.h>
#include <linux/cgroup.h>
#include <linux/completion.h>
#include <linux/cred.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/kthread.h>
#include <linux/moduleparam.h>
#include <linux/nsproxy.h>
#include <linux/random.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/sched/user.h>
#include <linux/sched/vhost_task.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/user_namespace.h>
#include <linux/wait.h>

#include "rust_cases.h"

#define VT_TIMEOUT (10 * HZ)

/* What a test's worker function does and what it saw. */
struct vt_probe {
	atomic_t calls;
	atomic_t kills;
	/* fn returns true (did work) while this is positive, taking one. */
	atomic_t work;
	/* Set once vhost_task_stop() returned: fn must not run after it. */
	bool stopped;
	atomic_t calls_after_stop;
	/* Set while fn runs. */
	atomic_t in_fn;
	wait_queue_head_t wq;

	/*
	 * Hold fn inside its next call: it completes @entered, then spins
	 * until @released without touching its task state, as busy work does.
	 */
	bool hold;
	bool released;
	struct completion entered;

	/* Taken on the first call. */
	struct task_struct *task;
	void *arg;
	unsigned int flags;
	pid_t tgid;
	bool leader;
	int exit_signal;
	unsigned int state;
	struct mm_struct *mm;
	struct files_struct *files;
	const struct cred *cred;
	struct nsproxy *nsproxy;
	struct css_set *cgroups;
	sigset_t blocked;
	char comm[TASK_COMM_LEN];

	/* The task of the probe while it is not stopped; the suite's .exit stops it. */
	struct vhost_task *vtsk;
};

static void vt_probe_init(struct vt_probe *p)
{
	memset(p, 0, sizeof(*p));
	init_waitqueue_head(&p->wq);
	init_completion(&p->entered);
}

static bool vt_fn(void *data)
{
	struct vt_probe *p = data;
	bool did_work;

	atomic_inc(&p->in_fn);
	if (READ_ONCE(p->stopped))
		atomic_inc(&p->calls_after_stop);
	if (!p->task) {
		p->state = READ_ONCE(current->__state);
		p->arg = data;
		p->flags = current->flags;
		p->tgid = current->tgid;
		p->leader = thread_group_leader(current);
		p->exit_signal = current->exit_signal;
		p->mm = current->mm;
		p->files = current->files;
		p->cred = current->cred;
		p->nsproxy = current->nsproxy;
		rcu_read_lock();
		p->cgroups = task_css_set(current);
		rcu_read_unlock();
		p->blocked = current->blocked;
		get_task_comm(p->comm, current);
		p->task = get_task_struct(current);
	}
	if (READ_ONCE(p->hold)) {
		WRITE_ONCE(p->hold, false);
		complete(&p->entered);
		/* Pairs with the release in vt_release(). */
		while (!smp_load_acquire(&p->released))
			cond_resched();
	}
	did_work = atomic_add_unless(&p->work, -1, 0);
	atomic_inc(&p->calls);
	atomic_dec(&p->in_fn);
	wake_up_all(&p->wq);
	return did_work;
}

static void vt_kill(void *data)
{
	struct vt_probe *p = data;

	atomic_inc(&p->kills);
}

static struct vhost_task *vt_create(struct kunit *test, struct vt_probe *p,
				    const char *name)
{
	struct vhost_task *vtsk = vhost_task_create(vt_fn, vt_kill, p, name);

	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, vtsk);
	p->vtsk = vtsk;
	return vtsk;
}

static struct vhost_task *vt_run(struct kunit *test, struct vt_probe *p)
{
	struct vhost_task *vtsk = vt_create(test, p, "vt-test");

	vhost_task_start(vtsk);
	return vtsk;
}

/* Wait until fn has been called at least @n times; false on timeout. */
static bool vt_wait_calls(struct vt_probe *p, int n)
{
	return wait_event_timeout(p->wq, atomic_read(&p->calls) >= n,
				  VT_TIMEOUT) > 0;
}

/* A started task whose fn has run once, as most cases begin. */
static struct vhost_task *vt_run_first_call(struct kunit *test, struct vt_probe *p)
{
	struct vhost_task *vtsk = vt_run(test, p);

	KUNIT_ASSERT_TRUE(test, vt_wait_calls(p, 1));
	return vtsk;
}

/* Wait until the worker is asleep in schedule() with fn not running. */
static bool vt_wait_idle(struct vt_probe *p)
{
	unsigned long end = jiffies + VT_TIMEOUT;

	while (time_before(jiffies, end)) {
		if (!atomic_read(&p->in_fn) && !task_is_running(p->task) &&
		    READ_ONCE(p->task->__state) == TASK_INTERRUPTIBLE &&
		    !task_curr(p->task))
			return true;
		usleep_range(100, 200);
	}
	return false;
}

/* Wait until the creator's thread group has @n threads again. */
static bool vt_wait_nr_threads(int n)
{
	unsigned long end = jiffies + VT_TIMEOUT;

	while (get_nr_threads(current) != n && time_before(jiffies, end))
		usleep_range(100, 200);
	return get_nr_threads(current) == n;
}

static void vt_stop(struct vhost_task *vtsk, struct vt_probe *p)
{
	vhost_task_stop(vtsk);
	WRITE_ONCE(p->stopped, true);
	p->vtsk = NULL;
}

static void vt_probe_put(struct vt_probe *p)
{
	if (p->task)
		put_task_struct(p->task);
	p->task = NULL;
}

/* Let a held fn return. */
static void vt_release(struct vt_probe *p)
{
	/* Pairs with the acquire of the held fn in vt_fn(). */
	smp_store_release(&p->released, true);
}

/* Hold fn in its next call, wake the worker and wait until fn is held. */
static bool vt_hold(struct vhost_task *vtsk, struct vt_probe *p)
{
	reinit_completion(&p->entered);
	WRITE_ONCE(p->released, false);
	WRITE_ONCE(p->hold, true);
	vhost_task_wake(vtsk);
	return wait_for_completion_timeout(&p->entered, VT_TIMEOUT) > 0;
}

/* Wait until @task has left do_exit()'s point of no return. */
static bool vt_wait_exited(struct task_struct *task)
{
	unsigned long end = jiffies + VT_TIMEOUT;

	while (time_before(jiffies, end)) {
		if (READ_ONCE(task->exit_state))
			return true;
		usleep_range(100, 200);
	}
	return false;
}

static void create_returns_inactive_task_fn_not_called_before_start(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;

	vtsk = vt_create(test, p, "vt-inactive");
	msleep(100);
	KUNIT_EXPECT_EQ(test, atomic_read(&p->calls), 0);
	vhost_task_start(vtsk);
	KUNIT_EXPECT_TRUE(test, vt_wait_calls(p, 1));
	vt_stop(vtsk, p);
}

static void wake_before_start_does_not_run_fn(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;

	vtsk = vt_create(test, p, "vt-early-wake");
	vhost_task_wake(vtsk);
	vhost_task_wake(vtsk);
	msleep(100);
	KUNIT_EXPECT_EQ(test, atomic_read(&p->calls), 0);
	vhost_task_start(vtsk);
	KUNIT_EXPECT_TRUE(test, vt_wait_calls(p, 1));
	vt_stop(vtsk, p);
}

static void start_runs_fn_in_the_new_task_with_arg(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;

	vtsk = vt_run_first_call(test, p);
	KUNIT_EXPECT_PTR_EQ(test, p->arg, (void *)p);
	KUNIT_EXPECT_PTR_NE(test, p->task, current);
	KUNIT_EXPECT_NE(test, p->task->pid, current->pid);
	vt_stop(vtsk, p);
}

static void worker_is_user_worker_not_kthread(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;

	vtsk = vt_run_first_call(test, p);
	KUNIT_EXPECT_TRUE(test, p->flags & PF_USER_WORKER);
	KUNIT_EXPECT_FALSE(test, p->flags & PF_KTHREAD);
	KUNIT_EXPECT_FALSE(test, p->flags & PF_IO_WORKER);
	vt_stop(vtsk, p);
}

static void worker_is_a_thread_of_the_creator_group(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;

	vtsk = vt_run_first_call(test, p);
	KUNIT_EXPECT_EQ(test, p->tgid, current->tgid);
	KUNIT_EXPECT_FALSE(test, p->leader);
	KUNIT_EXPECT_TRUE(test, same_thread_group(p->task, current));
	/* A thread, not a child: no exit signal to anyone. */
	KUNIT_EXPECT_EQ(test, p->exit_signal, -1);
	vt_stop(vtsk, p);
}

static void worker_counts_in_creator_thread_count_until_it_exits(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;
	int before = get_nr_threads(current);

	vtsk = vt_create(test, p, "vt-count");
	KUNIT_EXPECT_EQ(test, get_nr_threads(current), before + 1);
	vhost_task_start(vtsk);
	KUNIT_ASSERT_TRUE(test, vt_wait_calls(p, 1));
	vt_stop(vtsk, p);
	KUNIT_EXPECT_TRUE(test, vt_wait_nr_threads(before));
}

static void worker_shares_the_creator_mm(struct kunit *test)
{
	struct mm_struct *mm = mm_alloc();
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;

	KUNIT_ASSERT_NOT_NULL(test, mm);
	/* Give this kthread an address space, as an owner process has. */
	kthread_use_mm(mm);
	vtsk = vhost_task_create(vt_fn, vt_kill, p, "vt-mm");
	kthread_unuse_mm(mm);
	if (IS_ERR(vtsk)) {
		mmput(mm);
		KUNIT_FAIL(test, "vhost_task_create: %ld", PTR_ERR(vtsk));
		return;
	}
	vhost_task_start(vtsk);
	KUNIT_EXPECT_TRUE(test, vt_wait_calls(p, 1));
	KUNIT_EXPECT_PTR_EQ(test, p->mm, mm);
	vt_stop(vtsk, p);
	KUNIT_EXPECT_TRUE(test, vt_wait_exited(p->task));
	mmput(mm);
}

static void worker_has_no_files(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;

	vtsk = vt_run_first_call(test, p);
	KUNIT_EXPECT_NULL(test, p->files);
	vt_stop(vtsk, p);
}

static void worker_shares_creator_creds_namespaces_and_cgroups(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;

	vtsk = vt_run_first_call(test, p);
	KUNIT_EXPECT_PTR_EQ(test, p->cred, current->cred);
	KUNIT_EXPECT_PTR_EQ(test, p->nsproxy, current->nsproxy);
	rcu_read_lock();
	KUNIT_EXPECT_PTR_EQ(test, p->cgroups, task_css_set(current));
	rcu_read_unlock();
	vt_stop(vtsk, p);
}

static void worker_blocks_every_signal_but_sigkill_and_sigstop(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;

	vtsk = vt_run_first_call(test, p);
	KUNIT_EXPECT_FALSE(test, sigismember(&p->blocked, SIGKILL));
	KUNIT_EXPECT_FALSE(test, sigismember(&p->blocked, SIGSTOP));
	KUNIT_EXPECT_TRUE(test, sigismember(&p->blocked, SIGTERM));
	KUNIT_EXPECT_TRUE(test, sigismember(&p->blocked, SIGINT));
	KUNIT_EXPECT_TRUE(test, sigismember(&p->blocked, SIGUSR1));
	vt_stop(vtsk, p);
}

static void worker_comm_is_the_requested_name(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;

	vtsk = vt_create(test, p, "vhost-4242");
	vhost_task_start(vtsk);
	KUNIT_ASSERT_TRUE(test, vt_wait_calls(p, 1));
	KUNIT_EXPECT_STREQ(test, p->comm, "vhost-4242");
	vt_stop(vtsk, p);
}

static void worker_comm_is_truncated_to_task_comm_len(struct kunit *test)
{
	static const char name[] = "vhost-a-name-much-longer-than-the-comm-field";
	char want[TASK_COMM_LEN];
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;

	strscpy(want, name, sizeof(want));
	vtsk = vt_create(test, p, name);
	vhost_task_start(vtsk);
	KUNIT_ASSERT_TRUE(test, vt_wait_calls(p, 1));
	KUNIT_EXPECT_EQ(test, strlen(p->comm), (size_t)TASK_COMM_LEN - 1);
	KUNIT_EXPECT_STREQ(test, p->comm, want);
	vt_stop(vtsk, p);
}

static void fn_is_called_in_task_interruptible(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;

	vtsk = vt_run_first_call(test, p);
	/* Set before fn runs, so a wake-up while fn looks for work counts. */
	KUNIT_EXPECT_EQ(test, p->state, (unsigned int)TASK_INTERRUPTIBLE);
	vt_stop(vtsk, p);
}

static void fn_returning_false_sleeps_until_the_next_wake(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;
	int i;

	vtsk = vt_run_first_call(test, p);
	for (i = 1; i <= 10; i++) {
		KUNIT_ASSERT_TRUE(test, vt_wait_idle(p));
		msleep(20);
		KUNIT_EXPECT_EQ(test, atomic_read(&p->calls), i);
		vhost_task_wake(vtsk);
		KUNIT_ASSERT_TRUE(test, vt_wait_calls(p, i + 1));
	}
	vt_stop(vtsk, p);
}

static void fn_returning_true_is_called_again_without_a_wake(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;

	atomic_set(&p->work, 1000);
	vtsk = vt_run(test, p);
	/* 1000 calls that did work, then one that found none. */
	KUNIT_EXPECT_TRUE(test, vt_wait_calls(p, 1001));
	KUNIT_ASSERT_TRUE(test, vt_wait_idle(p));
	KUNIT_EXPECT_EQ(test, atomic_read(&p->calls), 1001);
	KUNIT_EXPECT_EQ(test, atomic_read(&p->work), 0);
	vt_stop(vtsk, p);
}

static void wake_reruns_fn_each_time(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;
	int i;

	vtsk = vt_run_first_call(test, p);
	for (i = 0; i < 500; i++) {
		int before = atomic_read(&p->calls);

		vhost_task_wake(vtsk);
		KUNIT_ASSERT_TRUE(test, vt_wait_calls(p, before + 1));
	}
	vt_stop(vtsk, p);
}

static void wake_while_fn_runs_is_never_lost(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;
	int i;

	vtsk = vt_run_first_call(test, p);
	for (i = 0; i < 300; i++) {
		int before;

		KUNIT_ASSERT_TRUE(test, vt_hold(vtsk, p));
		/*
		 * fn runs in TASK_INTERRUPTIBLE and will report no work: this
		 * wake must make the worker call it again instead of sleeping.
		 */
		before = atomic_read(&p->calls);
		vhost_task_wake(vtsk);
		vt_release(p);
		KUNIT_ASSERT_TRUE(test, vt_wait_calls(p, before + 2));
	}
	vt_stop(vtsk, p);
}

static void work_queued_right_after_fn_found_none_is_not_lost(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;
	int i;

	vtsk = vt_run_first_call(test, p);
	/* Queue work and wake at random points of the worker's loop. */
	for (i = 0; i < 2000; i++) {
		atomic_inc(&p->work);
		vhost_task_wake(vtsk);
		if (get_random_u32_below(4) == 0)
			udelay(get_random_u32_below(50));
	}
	KUNIT_EXPECT_TRUE(test, wait_event_timeout(p->wq, !atomic_read(&p->work),
						   VT_TIMEOUT) > 0);
	vt_stop(vtsk, p);
}

static void stop_returns_after_fn_returned(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;

	vtsk = vt_run_first_call(test, p);
	KUNIT_ASSERT_TRUE(test, vt_hold(vtsk, p));
	vt_release(p);
	vt_stop(vtsk, p);
	KUNIT_EXPECT_EQ(test, atomic_read(&p->in_fn), 0);
	KUNIT_EXPECT_TRUE(test, vt_wait_exited(p->task));
}

static int vt_release_later(void *data)
{
	struct vt_probe *p = data;

	msleep(200);
	vt_release(p);
	return 0;
}

static void stop_waits_for_a_busy_fn(struct kunit *test)
{
	struct task_struct *helper;
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;
	unsigned long t0;

	vtsk = vt_run_first_call(test, p);
	KUNIT_ASSERT_TRUE(test, vt_hold(vtsk, p));
	/*
	 * Before the helper exists: its 200 ms then lie wholly after t0, however
	 * late this thread runs again after kthread_run() on a loaded host.
	 */
	t0 = jiffies;
	helper = kthread_run(vt_release_later, p, "vt-release");
	KUNIT_ASSERT_FALSE(test, IS_ERR(helper));
	vt_stop(vtsk, p);
	KUNIT_EXPECT_GE(test, jiffies_to_msecs(jiffies - t0), 150u);
	KUNIT_EXPECT_EQ(test, atomic_read(&p->in_fn), 0);
}

static void fn_is_never_called_after_stop_returns(struct kunit *test)
{
	int round;

	for (round = 0; round < 50; round++) {
		struct vt_probe p;
		struct vhost_task *vtsk;
		int calls;

		vt_probe_init(&p);
		atomic_set(&p.work, get_random_u32_below(200));
		vtsk = vt_run(test, &p);
		udelay(get_random_u32_below(200));
		vhost_task_wake(vtsk);
		vt_stop(vtsk, &p);
		calls = atomic_read(&p.calls);
		usleep_range(5000, 6000);
		KUNIT_EXPECT_EQ(test, atomic_read(&p.calls), calls);
		KUNIT_EXPECT_EQ(test, atomic_read(&p.calls_after_stop), 0);
		KUNIT_EXPECT_EQ(test, atomic_read(&p.in_fn), 0);
		vt_probe_put(&p);
	}
}

static void handle_sigkill_is_not_called_on_stop(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;

	vtsk = vt_run_first_call(test, p);
	vt_stop(vtsk, p);
	KUNIT_EXPECT_TRUE(test, vt_wait_exited(p->task));
	KUNIT_EXPECT_EQ(test, atomic_read(&p->kills), 0);
}

static void stop_right_after_start_does_not_hang(struct kunit *test)
{
	int round;

	for (round = 0; round < 100; round++) {
		struct vt_probe p;
		struct vhost_task *vtsk;

		vt_probe_init(&p);
		vtsk = vt_run(test, &p);
		vt_stop(vtsk, &p);
		KUNIT_EXPECT_EQ(test, atomic_read(&p.kills), 0);
		KUNIT_EXPECT_LE(test, atomic_read(&p.calls), 1);
		vt_probe_put(&p);
	}
}

static void worker_exits_and_is_reaped_after_stop(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;
	struct pid *pid;
	unsigned long end;

	vtsk = vt_run_first_call(test, p);
	pid = get_task_pid(p->task, PIDTYPE_PID);
	vt_stop(vtsk, p);
	KUNIT_EXPECT_TRUE(test, vt_wait_exited(p->task));
	/* A thread reaps itself: its pid goes away without a wait(). */
	end = jiffies + VT_TIMEOUT;
	while (pid_has_task(pid, PIDTYPE_PID) && time_before(jiffies, end))
		usleep_range(100, 200);
	KUNIT_EXPECT_FALSE(test, pid_has_task(pid, PIDTYPE_PID));
	put_pid(pid);
}

static int vt_stop_fn(void *data)
{
	vhost_task_stop(data);
	return 0;
}

struct vt_waker {
	struct vhost_task *vtsk;
	struct vt_probe *p;
	bool done;
	atomic_t wakes;
	struct completion finished;
};

static int vt_waker_fn(void *data)
{
	struct vt_waker *w = data;

	while (!READ_ONCE(w->done)) {
		vhost_task_wake(w->vtsk);
		atomic_inc(&w->wakes);
		cond_resched();
	}
	complete(&w->finished);
	return 0;
}

/* Wait until the waker has woken the task @n times in all. */
static bool vt_wait_wakes(struct vt_waker *w, int n)
{
	unsigned long end = jiffies + VT_TIMEOUT;

	while (atomic_read(&w->wakes) < n && time_before(jiffies, end))
		usleep_range(50, 100);
	return atomic_read(&w->wakes) >= n;
}

/*
 * Another thread wakes the task in a loop while it is being stopped. As in
 * vhost, the wakes end before the task is freed: fn, held while the stop is
 * under way, ends the waker before it returns and lets the worker exit.
 */
static void stop_racing_with_wakes_from_another_thread(struct kunit *test)
{
	int round;

	for (round = 0; round < 50; round++) {
		struct task_struct *stopper, *waker;
		struct vt_waker w = {};
		int wakes;
		struct vt_probe p;

		vt_probe_init(&p);
		init_completion(&w.finished);
		w.p = &p;
		w.vtsk = vt_run(test, &p);
		KUNIT_ASSERT_TRUE(test, vt_wait_calls(&p, 1));
		waker = kthread_run(vt_waker_fn, &w, "vt-waker");
		KUNIT_ASSERT_FALSE(test, IS_ERR(waker));
		KUNIT_ASSERT_TRUE(test, vt_hold(w.vtsk, &p));
		KUNIT_ASSERT_TRUE(test, vt_wait_wakes(&w, 1));
		/* Stop from a third thread while the waker goes on. */
		stopper = kthread_create(vt_stop_fn, w.vtsk, "vt-stopper");
		KUNIT_ASSERT_FALSE(test, IS_ERR(stopper));
		get_task_struct(stopper);
		wakes = atomic_read(&w.wakes);
		wake_up_process(stopper);
		udelay(get_random_u32_below(500));
		/* Make sure wakes and the stop overlapped. */
		KUNIT_EXPECT_TRUE(test, vt_wait_wakes(&w, wakes + 10));
		WRITE_ONCE(w.done, true);
		KUNIT_ASSERT_TRUE(test, wait_for_completion_timeout(&w.finished, VT_TIMEOUT) > 0);
		vt_release(&p);
		KUNIT_EXPECT_TRUE(test, vt_wait_exited(stopper));
		put_task_struct(stopper);
		KUNIT_EXPECT_EQ(test, atomic_read(&p.kills), 0);
		KUNIT_EXPECT_EQ(test, atomic_read(&p.in_fn), 0);
		vt_probe_put(&p);
	}
}

/* Rounds of the stop/wake/fn race: make stress boots with 1000. */
static unsigned int race_rounds = 100;
module_param(race_rounds, uint, 0444);
MODULE_PARM_DESC(race_rounds, "rounds of stop_wake_and_fn_finishing_race_...");

struct vt_stopper {
	struct vhost_task *vtsk;
	struct vt_probe *p;
};

static int vt_stopper_fn(void *data)
{
	struct vt_stopper *s = data;

	vt_stop(s->vtsk, s->p);
	return 0;
}

/*
 * Stop against wake against fn finishing, with random delays and random
 * orders: fn is held, a stop starts from another thread (at once, or after
 * a while), this thread wakes the task a random number of times, then lets
 * fn finish, reporting work done or not at random. Whichever comes first,
 * fn must never run after the stop returned, handle_sigkill must not run,
 * and the worker must exit. The wakes end when fn is let go, as vhost's end
 * with its flush: after that the task may be freed at any moment.
 */
static void stop_wake_and_fn_finishing_race_loses_nothing(struct kunit *test)
{
	unsigned int round;

	for (round = 0; round < race_rounds; round++) {
		struct task_struct *stopper;
		struct vt_stopper s;
		struct vt_probe p;
		int i, wakes;

		vt_probe_init(&p);
		s.p = &p;
		s.vtsk = vt_run(test, &p);
		KUNIT_ASSERT_TRUE(test, vt_wait_calls(&p, 1));
		/* fn reports work done this many more times, then none. */
		atomic_set(&p.work, get_random_u32_below(3));
		KUNIT_ASSERT_TRUE(test, vt_hold(s.vtsk, &p));
		stopper = kthread_create(vt_stopper_fn, &s, "vt-stopper");
		KUNIT_ASSERT_FALSE(test, IS_ERR(stopper));
		get_task_struct(stopper);
		if (round & 1)
			wake_up_process(stopper);
		wakes = get_random_u32_below(64);
		for (i = 0; i < wakes; i++) {
			vhost_task_wake(s.vtsk);
			if (!get_random_u32_below(8))
				udelay(get_random_u32_below(50));
		}
		if (!(round & 1))
			wake_up_process(stopper);
		udelay(get_random_u32_below(200));
		vt_release(&p);
		KUNIT_EXPECT_TRUE(test, vt_wait_exited(stopper));
		put_task_struct(stopper);
		KUNIT_EXPECT_TRUE(test, vt_wait_exited(p.task));
		KUNIT_EXPECT_EQ(test, atomic_read(&p.kills), 0);
		KUNIT_EXPECT_EQ(test, atomic_read(&p.calls_after_stop), 0);
		KUNIT_EXPECT_EQ(test, atomic_read(&p.in_fn), 0);
		vt_probe_put(&p);
	}
	kunit_info(test, "%u rounds\n", race_rounds);
}

static void stop_from_another_thread_than_the_creator(struct kunit *test)
{
	struct vt_probe *p = test->priv;
	struct vhost_task *vtsk;
	struct task_struct *stopper;

	vtsk = vt_run_first_call(test, p);
	stopper = kthread_run(vt_stop_fn, vtsk, "vt-stopper");
	KUNIT_ASSERT_FALSE(test, IS_ERR(stopper));
	/* The stopper stops the task, not .exit. */
	p->vtsk = NULL;
	KUNIT_EXPECT_TRUE(test, vt_wait_exited(p->task));
	KUNIT_EXPECT_EQ(test, atomic_read(&p->kills), 0);
}

#define VT_MANY 64

static void vt_shuffle(int *a, int n)
{
	int i;

	for (i = n - 1; i > 0; i--) {
		int j = get_random_u32_below(i + 1);

		swap(a[i], a[j]);
	}
}

static void many_tasks_started_and_stopped_in_random_order(struct kunit *test)
{
	struct vhost_task **vtsk;
	struct vt_probe *p;
	int *order;
	int i;

	p = kunit_kcalloc(test, VT_MANY, sizeof(*p), GFP_KERNEL);
	vtsk = kunit_kcalloc(test, VT_MANY, sizeof(*vtsk), GFP_KERNEL);
	order = kunit_kcalloc(test, VT_MANY, sizeof(*order), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, p);
	KUNIT_ASSERT_NOT_NULL(test, vtsk);
	KUNIT_ASSERT_NOT_NULL(test, order);

	for (i = 0; i < VT_MANY; i++) {
		vt_probe_init(&p[i]);
		vtsk[i] = vhost_task_create(vt_fn, vt_kill, &p[i], "vt-many");
		KUNIT_ASSERT_FALSE(test, IS_ERR(vtsk[i]));
		order[i] = i;
	}
	/* Start in a random order. */
	vt_shuffle(order, VT_MANY);
	for (i = 0; i < VT_MANY; i++)
		vhost_task_start(vtsk[order[i]]);
	for (i = 0; i < VT_MANY; i++)
		KUNIT_EXPECT_TRUE(test, vt_wait_calls(&p[i], 1));
	/* Each wake reaches its own task only. */
	for (i = 0; i < VT_MANY; i++) {
		atomic_set(&p[i].work, i);
		vhost_task_wake(vtsk[i]);
	}
	for (i = 0; i < VT_MANY; i++) {
		KUNIT_EXPECT_TRUE(test, vt_wait_calls(&p[i], i + 2));
		KUNIT_EXPECT_PTR_EQ(test, p[i].arg, (void *)&p[i]);
	}
	/* Stop in another random order. */
	vt_shuffle(order, VT_MANY);
	for (i = 0; i < VT_MANY; i++) {
		struct vt_probe *q = &p[order[i]];

		vt_stop(vtsk[order[i]], q);
		KUNIT_EXPECT_EQ(test, atomic_read(&q->kills), 0);
		KUNIT_EXPECT_EQ(test, atomic_read(&q->calls_after_stop), 0);
	}
	for (i = 0; i < VT_MANY; i++) {
		KUNIT_EXPECT_TRUE(test, vt_wait_exited(p[i].task));
		vt_probe_put(&p[i]);
	}
}

static void create_and_stop_in_a_loop_leaves_thread_count_unchanged(struct kunit *test)
{
	int before = get_nr_threads(current);
	int i;

	for (i = 0; i < 200; i++) {
		struct vt_probe p;
		struct vhost_task *vtsk;

		vt_probe_init(&p);
		vtsk = vt_run(test, &p);
		if (i & 1)
			KUNIT_ASSERT_TRUE(test, vt_wait_calls(&p, 1));
		vt_stop(vtsk, &p);
		vt_probe_put(&p);
	}
	KUNIT_EXPECT_TRUE(test, vt_wait_nr_threads(before));
}

/*
 * Make this kthread an unprivileged user, uid 4242 with no capabilities,
 * whose RLIMIT_NPROC is @limit: copy_process() then refuses to exceed it.
 */
int vhost_task_test_become_limited_user(unsigned long limit)
{
	struct cred *new = prepare_creds();
	int ret;

	if (!new)
		return -ENOMEM;
	new->uid = KUIDT_INIT(4242);
	new->euid = new->uid;
	new->suid = new->uid;
	new->fsuid = new->uid;
	new->gid = KGIDT_INIT(4242);
	new->egid = new->gid;
	new->sgid = new->gid;
	new->fsgid = new->gid;
	free_uid(new->user);
	new->user = alloc_uid(new->uid);
	if (!new->user) {
		abort_creds(new);
		return -ENOMEM;
	}
	ret = set_cred_ucounts(new);
	if (ret) {
		abort_creds(new);
		return ret;
	}
	cap_clear(new->cap_effective);
	cap_clear(new->cap_permitted);
	cap_clear(new->cap_inheritable);
	cap_clear(new->cap_bset);
	cap_clear(new->cap_ambient);
	commit_creds(new);
	task_lock(current->group_leader);
	current->signal->rlim[RLIMIT_NPROC].rlim_cur = limit;
	task_unlock(current->group_leader);
	return 0;
}

static void create_fails_with_eagain_at_rlimit_nproc(struct kunit *test)
{
	struct vhost_task *vtsk;
	struct vt_probe *p = test->priv;
	int threads;

	/* This thread is the user's only task: a limit of 1 is full. */
	KUNIT_ASSERT_EQ(test, vhost_task_test_become_limited_user(1), 0);
	threads = get_nr_threads(current);
	vtsk = vhost_task_create(vt_fn, vt_kill, p, "vt-nproc");
	KUNIT_EXPECT_TRUE(test, IS_ERR(vtsk));
	KUNIT_EXPECT_EQ(test, PTR_ERR_OR_ZERO(vtsk), -EAGAIN);
	KUNIT_EXPECT_EQ(test, get_nr_threads(current), threads);
	KUNIT_EXPECT_EQ(test, atomic_read(&p->calls), 0);
	if (!IS_ERR(vtsk))
		vhost_task_stop(vtsk);

	/* Once the limit is raised, the same user gets its worker. */
	task_lock(current->group_leader);
	current->signal->rlim[RLIMIT_NPROC].rlim_cur = 2;
	task_unlock(current->group_leader);
	vtsk = vhost_task_create(vt_fn, vt_kill, p, "vt-nproc");
	KUNIT_ASSERT_FALSE(test, IS_ERR(vtsk));
	vhost_task_start(vtsk);
	KUNIT_EXPECT_TRUE(test, vt_wait_calls(p, 1));
	vt_stop(vtsk, p);
}

static void create_fails_with_erestartnointr_while_a_signal_is_pending(struct kunit *test)
{
	struct vhost_task *vtsk;
	struct vt_probe *p = test->priv;
	int threads = get_nr_threads(current);

	allow_signal(SIGUSR1);
	send_sig(SIGUSR1, current, 0);
	vtsk = vhost_task_create(vt_fn, vt_kill, p, "vt-sigpending");
	flush_signals(current);
	disallow_signal(SIGUSR1);
	KUNIT_EXPECT_TRUE(test, IS_ERR(vtsk));
	/* The syscall that asked for the worker is restarted after the signal. */
	KUNIT_EXPECT_EQ(test, PTR_ERR_OR_ZERO(vtsk), -ERESTARTNOINTR);
	KUNIT_EXPECT_EQ(test, get_nr_threads(current), threads);
	if (!IS_ERR(vtsk))
		vhost_task_stop(vtsk);

	vtsk = vt_run(test, p);
	KUNIT_EXPECT_TRUE(test, vt_wait_calls(p, 1));
	vt_stop(vtsk, p);
}

static struct kunit_case vhost_task_cases[] = {
	KUNIT_CASE(create_returns_inactive_task_fn_not_called_before_start),
	KUNIT_CASE(wake_before_start_does_not_run_fn),
	KUNIT_CASE(start_runs_fn_in_the_new_task_with_arg),
	KUNIT_CASE(worker_is_user_worker_not_kthread),
	KUNIT_CASE(worker_is_a_thread_of_the_creator_group),
	KUNIT_CASE(worker_counts_in_creator_thread_count_until_it_exits),
	KUNIT_CASE(worker_shares_the_creator_mm),
	KUNIT_CASE(worker_has_no_files),
	KUNIT_CASE(worker_shares_creator_creds_namespaces_and_cgroups),
	KUNIT_CASE(worker_blocks_every_signal_but_sigkill_and_sigstop),
	KUNIT_CASE(worker_comm_is_the_requested_name),
	KUNIT_CASE(worker_comm_is_truncated_to_task_comm_len),
	KUNIT_CASE(fn_is_called_in_task_interruptible),
	KUNIT_CASE(fn_returning_false_sleeps_until_the_next_wake),
	KUNIT_CASE(fn_returning_true_is_called_again_without_a_wake),
	KUNIT_CASE(wake_reruns_fn_each_time),
	KUNIT_CASE(wake_while_fn_runs_is_never_lost),
	KUNIT_CASE(work_queued_right_after_fn_found_none_is_not_lost),
	KUNIT_CASE(stop_returns_after_fn_returned),
	KUNIT_CASE(stop_waits_for_a_busy_fn),
	KUNIT_CASE(fn_is_never_called_after_stop_returns),
	KUNIT_CASE(handle_sigkill_is_not_called_on_stop),
	KUNIT_CASE(stop_right_after_start_does_not_hang),
	KUNIT_CASE(worker_exits_and_is_reaped_after_stop),
	KUNIT_CASE(stop_racing_with_wakes_from_another_thread),
	KUNIT_CASE(stop_wake_and_fn_finishing_race_loses_nothing),
	KUNIT_CASE(stop_from_another_thread_than_the_creator),
	KUNIT_CASE(many_tasks_started_and_stopped_in_random_order),
	KUNIT_CASE(create_and_stop_in_a_loop_leaves_thread_count_unchanged),
	KUNIT_CASE(create_fails_with_eagain_at_rlimit_nproc),
	KUNIT_CASE(create_fails_with_erestartnointr_while_a_signal_is_pending),
	{}
};

/*
 * Each case gets a fresh probe in test->priv. Whatever way the case ends,
 * even by a failed assertion, .exit stops the probe's task if the case left
 * it running, and drops the reference to the worker that fn took.
 */
static int vt_suite_init(struct kunit *test)
{
	struct vt_probe *p = kunit_kmalloc(test, sizeof(*p), GFP_KERNEL);

	if (!p)
		return -ENOMEM;
	vt_probe_init(p);
	test->priv = p;
	return 0;
}

static void vt_suite_exit(struct kunit *test)
{
	struct vt_probe *p = test->priv;

	if (p->vtsk) {
		vt_release(p);
		vt_stop(p->vtsk, p);
	}
	vt_probe_put(p);
}

static struct kunit_suite vhost_task_suite = {
	.name = "vhost_task",
	.init = vt_suite_init,
	.exit = vt_suite_exit,
	.test_cases = vhost_task_cases,
};

#if IS_ENABLED(CONFIG_VHOST_TASK_RUST) && !defined(VT_RUST_KUNIT_TESTS)
/* Where the tree has #[kunit_tests], rust_cases.rs registers the suite itself. */
static struct kunit_case vhost_task_rust_cases[] = {
	VT_RUST_CASE(new_user_worker_runs_nothing_until_started),
	VT_RUST_CASE(user_worker_function_runs_in_the_worker_task),
	VT_RUST_CASE(user_worker_data_is_dropped_by_the_handle_after_the_exit),
	VT_RUST_CASE(dropping_a_never_started_user_worker_runs_nothing),
	VT_RUST_CASE(user_worker_has_exited_only_after_the_function_returned),
	VT_RUST_CASE(user_worker_task_reference_outlives_the_thread),
	VT_RUST_CASE(user_worker_context_sees_no_signal_when_none_was_sent),
	VT_RUST_CASE(user_worker_create_failure_returns_eagain_and_frees_data),
	VT_RUST_CASE(user_worker_wait_sleeps_until_woken_with_the_condition_true),
	VT_RUST_CASE(vhost_work_may_sleep_after_set_running),
	VT_RUST_CASE(doc_example_of_vhost_work),
	VT_RUST_CASE(doc_example_of_vhost_task),
	VT_RUST_CASE(vhost_task_wake_reruns_work),
	VT_RUST_CASE(vhost_task_drop_stops_and_waits_for_the_worker),
	VT_RUST_CASE(vhost_task_work_is_dropped_by_stop_in_the_stopping_thread),
	VT_RUST_CASE(never_started_vhost_task_drops_work_unrun),
	VT_RUST_CASE(c_abi_rejects_null_arguments_with_einval),
	VT_RUST_CASE(c_abi_stop_of_a_never_started_task_returns),
	VT_RUST_CASE(c_abi_start_twice_is_ignored),
	{}
};

static struct kunit_suite vhost_task_rust_suite = {
	.name = "vhost_task_rust",
	.test_cases = vhost_task_rust_cases,
};

kunit_test_suites(&vhost_task_suite, &vhost_task_rust_suite);
#else
kunit_test_suites(&vhost_task_suite);
#endif

MODULE_DESCRIPTION("KUnit tests for vhost_task");
MODULE_LICENSE("GPL");
