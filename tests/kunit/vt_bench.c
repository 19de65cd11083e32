// SPDX-License-Identifier: GPL-2.0
/*
 * Microbenchmarks of vhost_task, through its C ABI only, so that the same
 * suite measures the upstream kernel/vhost_task.c and the Rust one.
 *
 * Suite "vt_bench" is not matched by the "vhost_task*" glob of the normal
 * KUnit runs: only 'make bench' runs it, with
 * "kunit.enable=1 kunit.filter_glob=vt_bench*" on the command line. Each case
 * prints its figures as KTAP diagnostics, one per line:
 *
 *     # <name> <value> <unit>
 *
 * and fails only if vhost_task misbehaves, never on a figure.
 *
 * Cases, in the order they run:
 *  - mem_per_task: the slab memory one vhost task costs beyond a bare user
 *    worker made by copy_process() with the same clone flags, which has the
 *    same task_struct, stack, pid and so on. Counted in objects, not pages:
 *    a census of every slab in memory (each slab's own count of objects in
 *    use, exact under SLUB_TINY, which has no per-CPU caches) gives the
 *    objects in use per cache, and the growth of each cache while mem_tasks
 *    tasks of each kind are created and kept alive, bare and vhost in
 *    alternation, times its object size, is the figure (after an
 *    rcu_barrier() before each phase, so that no free owed from before falls
 *    into one). The unit is then the object: what unrelated kernel activity
 *    allocates meanwhile is the only error. It also reports the size
 *    of the slab object that the struct vhost_task pointer lies in
 *    (ksize()), and as notes the cache of that object and every cache whose
 *    count grows per vhost task beyond a bare worker's.
 *  - create_start_stop: vhost_task_create() + vhost_task_start() +
 *    vhost_task_stop() in a loop: cycles per second, and the median time of
 *    create and of stop; and as a control, the cycles per second of a bare
 *    user worker that exits at once, waited for with a completion.
 *  - alloc_paths: a control, the same C code in both kernels: the allocation
 *    and free of one task's own object as each implementation makes them,
 *    timed alone. C's vhost_task_create() calls kzalloc() with the constant
 *    size of its struct vhost_task (104 bytes: a cache picked at compile
 *    time) and vhost_task_stop() kfree(); the Rust kernel crate's KBox of
 *    the 88-byte object calls krealloc(NULL, 88) (krealloc_node_align() on
 *    trees that have it: a cache looked up at run time), and frees with
 *    krealloc(p, 0). Their difference is part of what create_p50 and
 *    stop_p50 differ by.
 *  - wake_latency: ping-pong between this kthread on one CPU and a vhost task
 *    pinned to another: time from just before vhost_task_wake() to the entry
 *    of the task's work function, which answers with a completion. The
 *    task is asleep in its loop before each ping. p50 and p99.
 *  - wake_latency_64_tasks: the same, round robin over 64 tasks alive at
 *    once, all pinned to the other CPU.
 *
 * Times are ktime_get_ns(): under QEMU with -icount they count guest
 * instructions, otherwise wall-clock time.
 */

#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/cpumask.h>
#include <linux/err.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/mutex.h>
#include <linux/moduleparam.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/task.h>
#include <linux/sched/vhost_task.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/wait.h>

/*
 * struct slab, struct kmem_cache and the list of caches, for the census of
 * mem_per_task, as lib/slub_kunit.c has them; through -I$(srctree)/include,
 * since this file is reached through a symbolic link.
 */
#include <../mm/slab.h>

static unsigned int cycles = 1000;
module_param(cycles, uint, 0444);
MODULE_PARM_DESC(cycles, "create+start+stop cycles timed (default 1000)");

static unsigned int pings = 2000;
module_param(pings, uint, 0444);
MODULE_PARM_DESC(pings, "wake-ups timed per latency case (default 2000)");

static unsigned int mem_tasks = 2048;
module_param(mem_tasks, uint, 0444);
MODULE_PARM_DESC(mem_tasks, "tasks of each kind alive for the memory case (default 2048)");

#define VT_BENCH_MANY 64
#define VT_BENCH_MEM_ROUNDS 2

/* One figure, as a KTAP diagnostic line the bench scripts parse. */
#define vt_report(test, name, value, unit)				\
	kunit_log(KERN_INFO, test, KUNIT_SUBTEST_INDENT "# %s %lld %s\n", \
		  name, (long long)(value), unit)

/* @centi / 100 with two decimals, its sign always shown if @sign. */
static const char *vt_centi(char *buf, size_t len, long long centi, bool sign)
{
	unsigned long long a = centi < 0 ? -centi : centi;

	snprintf(buf, len, "%s%llu.%02llu", centi < 0 ? "-" : sign ? "+" : "", a / 100, a % 100);
	return buf;
}

/* A figure with two decimals, from its value times 100. */
static void vt_report_centi(struct kunit *test, const char *name, long long centi,
			    const char *unit)
{
	char v[32];

	kunit_log(KERN_INFO, test, KUNIT_SUBTEST_INDENT "# %s %s %s\n",
		  name, vt_centi(v, sizeof(v), centi, false), unit);
}

/* A line for the record, not a figure: "# note <text>". */
#define vt_note(test, fmt, ...)						\
	kunit_log(KERN_INFO, test, KUNIT_SUBTEST_INDENT "# note " fmt "\n", ##__VA_ARGS__)

static int vt_cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/* Sorts @v and returns its @pct-th percentile. */
static u64 vt_percentile(u64 *v, unsigned int n, unsigned int pct)
{
	sort(v, n, sizeof(*v), vt_cmp_u64, NULL);
	return v[min(n - 1, n * pct / 100)];
}

static bool vt_idle_fn(void *data)
{
	return false;
}

static void vt_kill_fn(void *data)
{
}

/*
 * The census of mem_per_task: objects in use per slab cache. The caches are
 * those on slab_caches when it begins, sorted by address; the growth of each
 * over the bare and the vhost phases is summed in bare and vhost.
 */
struct vt_cache {
	struct kmem_cache *s;
	long objs;
	long bare;
	long vhost;
};

struct vt_census {
	struct vt_cache *c;
	unsigned int n;
};

static int vt_cache_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct vt_cache *)a)->s;
	uintptr_t y = (uintptr_t)((const struct vt_cache *)b)->s;

	return x < y ? -1 : x > y;
}

static int vt_census_init(struct kunit *test, struct vt_census *cs)
{
	struct kmem_cache *s;
	unsigned int n = 0;

	mutex_lock(&slab_mutex);
	list_for_each_entry(s, &slab_caches, list)
		n++;
	cs->c = kunit_kcalloc(test, n + 16, sizeof(*cs->c), GFP_KERNEL);
	cs->n = 0;
	if (cs->c)
		list_for_each_entry(s, &slab_caches, list)
			if (cs->n < n + 16)
				cs->c[cs->n++].s = s;
	mutex_unlock(&slab_mutex);
	if (!cs->c)
		return -ENOMEM;
	sort(cs->c, cs->n, sizeof(*cs->c), vt_cache_cmp, NULL);
	return 0;
}

static struct vt_cache *vt_census_find(struct vt_census *cs, const struct kmem_cache *s)
{
	unsigned int lo = 0, hi = cs->n;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (cs->c[mid].s == s)
			return &cs->c[mid];
		if ((uintptr_t)cs->c[mid].s < (uintptr_t)s)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * Counts the objects in use in each cache into objs: every slab in memory,
 * found from its head page, adds its own count. Under SLUB_TINY there is no
 * per-CPU slab or object cache, so that count is exact. Holds slab_mutex so
 * that no cache goes away meanwhile; a slab that is freed or made meanwhile
 * is at most one slab's objects, and only another task makes one here.
 */
static void vt_census_take(struct vt_census *cs)
{
	struct pglist_data *pgdat;
	unsigned int i;

	for (i = 0; i < cs->n; i++)
		cs->c[i].objs = 0;
	mutex_lock(&slab_mutex);
	for_each_online_pgdat(pgdat) {
		unsigned long pfn;

		for (pfn = pgdat->node_start_pfn; pfn < pgdat_end_pfn(pgdat); pfn++) {
			struct page *page = pfn_to_online_page(pfn);
			struct vt_cache *c;
			struct slab *slab;

			if (!page)
				continue;
			slab = virt_to_slab(page_address(page));
			/* The head page of a slab only (struct slab overlays it). */
			if (!slab || (void *)slab != (void *)page)
				continue;
			c = vt_census_find(cs, READ_ONCE(slab->slab_cache));
			if (c)
				c->objs += (unsigned int)slab->inuse;
		}
		cond_resched();
	}
	mutex_unlock(&slab_mutex);
}

/* Adds the growth since the census in @before (objs) to the bare or vhost sums. */
static void vt_census_add(struct vt_census *cs, const long *before, bool vhost)
{
	unsigned int i;

	for (i = 0; i < cs->n; i++) {
		long d = cs->c[i].objs - before[i];

		if (vhost)
			cs->c[i].vhost += d;
		else
			cs->c[i].bare += d;
	}
}

static void vt_census_save(struct vt_census *cs, long *to)
{
	unsigned int i;

	for (i = 0; i < cs->n; i++)
		to[i] = cs->c[i].objs;
}

/* Bare user workers: what copy_process() costs without vhost_task. */
struct vt_bare {
	wait_queue_head_t wq;
	bool release;
	atomic_t alive;
	struct completion gone;
};

static int vt_bare_fn(void *data)
{
	struct vt_bare *b = data;

	wait_event(b->wq, READ_ONCE(b->release));
	if (atomic_dec_and_test(&b->alive))
		complete(&b->gone);
	do_exit(0);
}

static int vt_bare_create(struct vt_bare *b)
{
	struct kernel_clone_args args = {
		.flags		= CLONE_FS | CLONE_UNTRACED | CLONE_VM |
				  CLONE_THREAD | CLONE_SIGHAND,
		.exit_signal	= 0,
		.fn		= vt_bare_fn,
		.fn_arg		= b,
		.name		= "vt-bare",
		.user_worker	= 1,
		.no_files	= 1,
	};
	struct task_struct *tsk;

	tsk = copy_process(NULL, 0, NUMA_NO_NODE, &args);
	if (IS_ERR(tsk))
		return PTR_ERR(tsk);
	atomic_inc(&b->alive);
	wake_up_new_task(tsk);
	return 0;
}

static void vt_bare_release(struct vt_bare *b)
{
	WRITE_ONCE(b->release, true);
	wake_up_all(&b->wq);
	if (atomic_read(&b->alive))
		wait_for_completion(&b->gone);
}

static void mem_per_task(struct kunit *test)
{
	unsigned int n = max(mem_tasks, 1U), i, r;
	long long tasks, bare_bytes = 0, vhost_bytes = 0;
	struct vt_census cs;
	struct vhost_task **vt;
	struct vt_bare *bare;
	size_t object = 0;
	const char *cache = "?";
	long *before;
	int err = 0;

	vt = kunit_kcalloc(test, VT_BENCH_MEM_ROUNDS * n, sizeof(*vt), GFP_KERNEL);
	bare = kunit_kzalloc(test, sizeof(*bare), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, vt);
	KUNIT_ASSERT_NOT_NULL(test, bare);
	KUNIT_ASSERT_EQ(test, vt_census_init(test, &cs), 0);
	before = kunit_kcalloc(test, cs.n, sizeof(*before), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, before);
	init_waitqueue_head(&bare->wq);
	init_completion(&bare->gone);

	/* Everything stays alive until the end: no frees to refill the caches. */
	for (r = 0; r < VT_BENCH_MEM_ROUNDS && !err; r++) {
		/*
		 * Frees that RCU still owes from before (kernfs nodes, files of the
		 * boot) would count against whichever phase they fall in: pay them
		 * first, before each phase.
		 */
		rcu_barrier();
		vt_census_take(&cs);
		vt_census_save(&cs, before);
		for (i = 0; i < n && !err; i++)
			err = vt_bare_create(bare);
		vt_census_take(&cs);
		vt_census_add(&cs, before, false);

		rcu_barrier();
		vt_census_take(&cs);
		vt_census_save(&cs, before);
		for (i = 0; i < n && !err; i++) {
			struct vhost_task *vtsk;

			vtsk = vhost_task_create(vt_idle_fn, vt_kill_fn, NULL, "vt-mem");
			if (IS_ERR(vtsk)) {
				err = PTR_ERR(vtsk);
				break;
			}
			vhost_task_start(vtsk);
			vt[r * n + i] = vtsk;
		}
		vt_census_take(&cs);
		vt_census_add(&cs, before, true);
	}

	if (vt[0]) {
		struct slab *slab = virt_to_slab(vt[0]);

		/* The slab object that holds the pointer, wherever it points in it. */
		object = ksize(vt[0]);
		if (slab)
			cache = slab->slab_cache->name;
		for (i = 1; i < VT_BENCH_MEM_ROUNDS * n; i++)
			if (vt[i] && ksize(vt[i]) != object)
				object = 0;
	}
	for (i = 0; i < VT_BENCH_MEM_ROUNDS * n; i++)
		if (vt[i])
			vhost_task_stop(vt[i]);
	vt_bare_release(bare);
	KUNIT_ASSERT_EQ_MSG(test, err, 0, "creating %u tasks of each kind", n);
	KUNIT_EXPECT_NE_MSG(test, object, 0, "the struct vhost_task objects differ in size");

	tasks = (long long)VT_BENCH_MEM_ROUNDS * n;
	for (i = 0; i < cs.n; i++) {
		struct vt_cache *c = &cs.c[i];
		long long extra = c->vhost - c->bare;

		bare_bytes += (long long)c->bare * c->s->size;
		vhost_bytes += (long long)c->vhost * c->s->size;
		/* Caches that grow by a twentieth of an object or more per task. */
		if (abs(extra) * 20 >= tasks) {
			char x[32], b[32];

			vt_note(test,
				"mem_cache %s %u B: %s objects per vhost task beyond a bare worker's %s",
				c->s->name, c->s->size,
				vt_centi(x, sizeof(x), div64_s64(extra * 100, tasks), true),
				vt_centi(b, sizeof(b), div64_s64((long long)c->bare * 100, tasks),
					 false));
		}
	}
	vt_note(test, "vhost_task_object %s, %zu B (ksize of the struct vhost_task pointer)",
		cache, object);
	vt_report(test, "vhost_task_object", object, "B");
	vt_report_centi(test, "bare_worker_slab", div64_s64(bare_bytes * 100, tasks), "B");
	vt_report_centi(test, "mem_per_task", div64_s64((vhost_bytes - bare_bytes) * 100, tasks),
			"B");
}

/* A bare user worker that exits at once: the control of create_start_stop. */
static int vt_bare_exit_fn(void *data)
{
	complete(data);
	do_exit(0);
}

static int vt_bare_cycle(void)
{
	struct kernel_clone_args args = {
		.flags		= CLONE_FS | CLONE_UNTRACED | CLONE_VM |
				  CLONE_THREAD | CLONE_SIGHAND,
		.exit_signal	= 0,
		.fn		= vt_bare_exit_fn,
		.name		= "vt-bare",
		.user_worker	= 1,
		.no_files	= 1,
	};
	struct completion done;
	struct task_struct *tsk;

	init_completion(&done);
	args.fn_arg = &done;
	tsk = copy_process(NULL, 0, NUMA_NO_NODE, &args);
	if (IS_ERR(tsk))
		return PTR_ERR(tsk);
	wake_up_new_task(tsk);
	wait_for_completion(&done);
	return 0;
}

static void create_start_stop(struct kunit *test)
{
	unsigned int n = max(cycles, 1U), i;
	u64 *create_ns, *stop_ns, start, t0, total;

	create_ns = kunit_kcalloc(test, n, sizeof(u64), GFP_KERNEL);
	stop_ns = kunit_kcalloc(test, n, sizeof(u64), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, create_ns);
	KUNIT_ASSERT_NOT_NULL(test, stop_ns);

	/* Warm up, then time. */
	for (i = 0; i < n / 10; i++) {
		struct vhost_task *vtsk;

		vtsk = vhost_task_create(vt_idle_fn, vt_kill_fn, NULL, "vt-bench");
		KUNIT_ASSERT_NOT_ERR_OR_NULL(test, vtsk);
		vhost_task_start(vtsk);
		vhost_task_stop(vtsk);
	}

	start = ktime_get_ns();
	for (i = 0; i < n; i++) {
		struct vhost_task *vtsk;

		t0 = ktime_get_ns();
		vtsk = vhost_task_create(vt_idle_fn, vt_kill_fn, NULL, "vt-bench");
		create_ns[i] = ktime_get_ns() - t0;
		KUNIT_ASSERT_NOT_ERR_OR_NULL(test, vtsk);
		vhost_task_start(vtsk);
		t0 = ktime_get_ns();
		vhost_task_stop(vtsk);
		stop_ns[i] = ktime_get_ns() - t0;
	}
	total = ktime_get_ns() - start;

	vt_report(test, "create_start_stop",
		  div64_u64((u64)n * NSEC_PER_SEC, max(total, 1ULL)), "cycles/s");
	vt_report(test, "create_p50", vt_percentile(create_ns, n, 50), "ns");
	vt_report(test, "stop_p50", vt_percentile(stop_ns, n, 50), "ns");

	/* The same cycle of a bare user worker, without vhost_task. */
	start = ktime_get_ns();
	for (i = 0; i < n; i++)
		KUNIT_ASSERT_EQ(test, vt_bare_cycle(), 0);
	total = ktime_get_ns() - start;
	vt_report(test, "bare_create_start_exit_control",
		  div64_u64((u64)n * NSEC_PER_SEC, max(total, 1ULL)), "cycles/s");
}

/*
 * The calls of the kernel crate's Kmalloc (rust/kernel/alloc/allocator.rs) for
 * an object of @size and its free, where the tree has them.
 */
#ifdef krealloc_node_align
#define vt_rust_alloc(size)	krealloc_node_align(NULL, size, 8, GFP_KERNEL, NUMA_NO_NODE)
#define vt_rust_free(p)		krealloc_node_align(p, 0, 1, 0, NUMA_NO_NODE)
#else
#define vt_rust_alloc(size)	krealloc(NULL, size, GFP_KERNEL)
#define vt_rust_free(p)		krealloc(p, 0, 0)
#endif

/* The sizes of C's struct vhost_task and of the Rust task's one allocation. */
#define VT_BENCH_C_OBJECT	104
#define VT_BENCH_RUST_OBJECT	88

static void alloc_paths(struct kunit *test)
{
	unsigned int n = max(cycles, 1U), i;
	u64 *c_ns, *rust_ns, t0;

	c_ns = kunit_kcalloc(test, n, sizeof(u64), GFP_KERNEL);
	rust_ns = kunit_kcalloc(test, n, sizeof(u64), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, c_ns);
	KUNIT_ASSERT_NOT_NULL(test, rust_ns);

	for (i = 0; i < n; i++) {
		void *p;

		t0 = ktime_get_ns();
		p = kzalloc(VT_BENCH_C_OBJECT, GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(test, p);
		kfree(p);
		c_ns[i] = ktime_get_ns() - t0;

		t0 = ktime_get_ns();
		p = vt_rust_alloc(VT_BENCH_RUST_OBJECT);
		KUNIT_ASSERT_NOT_NULL(test, p);
		vt_rust_free(p);
		rust_ns[i] = ktime_get_ns() - t0;
	}
	vt_report(test, "alloc_free_kzalloc_p50", vt_percentile(c_ns, n, 50), "ns");
	vt_report(test, "alloc_free_krealloc_p50", vt_percentile(rust_ns, n, 50), "ns");
}

/* One side of a ping-pong: the task answers each new ping with a completion. */
struct vt_pp {
	struct vhost_task *vtsk;
	struct task_struct *task;
	/* Written by the pinger, read by the task. */
	unsigned int ping;
	unsigned int answered;
	u64 t_run;
	struct completion answer;
};

static bool vt_pp_fn(void *data)
{
	u64 now = ktime_get_ns();
	struct vt_pp *pp = data;
	/* Pairs with the release in vt_pp_ping(). */
	unsigned int ping = smp_load_acquire(&pp->ping);

	if (!pp->task)
		pp->task = get_task_struct(current);
	if (ping != pp->answered) {
		pp->t_run = now;
		pp->answered = ping;
		complete(&pp->answer);
	}
	return false;
}

/* Creates and starts a ping-pong task, and pins it to @cpu once it ran. */
static int vt_pp_start(struct vt_pp *pp, int cpu)
{
	pp->task = NULL;
	pp->ping = 0;
	pp->answered = 0;
	init_completion(&pp->answer);
	pp->vtsk = vhost_task_create(vt_pp_fn, vt_kill_fn, pp, "vt-pong");
	if (IS_ERR(pp->vtsk))
		return PTR_ERR(pp->vtsk);
	/* The first call records the task: ping 1 makes sure it happened. */
	vhost_task_start(pp->vtsk);
	/* Pairs with the acquire in vt_pp_fn(). */
	smp_store_release(&pp->ping, 1);
	vhost_task_wake(pp->vtsk);
	if (!wait_for_completion_timeout(&pp->answer, 10 * HZ))
		return -ETIMEDOUT;
	return set_cpus_allowed_ptr(pp->task, cpumask_of(cpu));
}

static void vt_pp_stop(struct vt_pp *pp)
{
	if (IS_ERR_OR_NULL(pp->vtsk))
		return;
	vhost_task_stop(pp->vtsk);
	if (pp->task)
		put_task_struct(pp->task);
	pp->vtsk = NULL;
}

/* One ping: the time from the wake-up to the work function; 0 on timeout. */
static u64 vt_pp_ping(struct vt_pp *pp)
{
	u64 t_wake;

	/* Measure a wake-up from sleep: wait until the task is off its CPU. */
	wait_task_inactive(pp->task, TASK_INTERRUPTIBLE);
	reinit_completion(&pp->answer);
	/* Pairs with the acquire in vt_pp_fn(). */
	smp_store_release(&pp->ping, pp->ping + 1);
	t_wake = ktime_get_ns();
	vhost_task_wake(pp->vtsk);
	if (!wait_for_completion_timeout(&pp->answer, 10 * HZ))
		return 0;
	return pp->t_run > t_wake ? pp->t_run - t_wake : 1;
}

static void vt_wake_latency(struct kunit *test, unsigned int ntasks, const char *name)
{
	unsigned int n = max(pings, 1U), i;
	int here, there, err = 0;
	struct vt_pp *pp;
	u64 *lat;
	char label[48];

	pp = kunit_kcalloc(test, ntasks, sizeof(*pp), GFP_KERNEL);
	lat = kunit_kcalloc(test, n, sizeof(u64), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, pp);
	KUNIT_ASSERT_NOT_NULL(test, lat);

	/* The pinger on the first online CPU, the tasks on the next one. */
	here = cpumask_first(cpu_online_mask);
	there = cpumask_next(here, cpu_online_mask);
	if (there >= nr_cpu_ids)
		there = here;
	KUNIT_ASSERT_EQ(test, set_cpus_allowed_ptr(current, cpumask_of(here)), 0);

	for (i = 0; i < ntasks && !err; i++)
		err = vt_pp_start(&pp[i], there);
	for (i = 0; i < n / 10 && !err; i++)
		if (!vt_pp_ping(&pp[i % ntasks]))
			err = -ETIMEDOUT;
	for (i = 0; i < n && !err; i++) {
		lat[i] = vt_pp_ping(&pp[i % ntasks]);
		if (!lat[i])
			err = -ETIMEDOUT;
	}

	for (i = 0; i < ntasks; i++)
		vt_pp_stop(&pp[i]);
	set_cpus_allowed_ptr(current, cpu_possible_mask);
	KUNIT_ASSERT_EQ_MSG(test, err, 0, "ping-pong with %u tasks", ntasks);

	snprintf(label, sizeof(label), "%s_p50", name);
	vt_report(test, label, vt_percentile(lat, n, 50), "ns");
	snprintf(label, sizeof(label), "%s_p99", name);
	vt_report(test, label, vt_percentile(lat, n, 99), "ns");
}

static void wake_latency(struct kunit *test)
{
	vt_wake_latency(test, 1, "wake_latency");
}

static void wake_latency_64_tasks(struct kunit *test)
{
	vt_wake_latency(test, VT_BENCH_MANY, "wake_latency_64");
}

static struct kunit_case vt_bench_cases[] = {
	KUNIT_CASE_SLOW(mem_per_task),
	KUNIT_CASE_SLOW(create_start_stop),
	KUNIT_CASE_SLOW(alloc_paths),
	KUNIT_CASE_SLOW(wake_latency),
	KUNIT_CASE_SLOW(wake_latency_64_tasks),
	{}
};

static struct kunit_suite vt_bench_suite = {
	.name = "vt_bench",
	.test_cases = vt_bench_cases,
};

kunit_test_suite(vt_bench_suite);

MODULE_DESCRIPTION("Microbenchmarks of vhost_task through its C ABI");
MODULE_LICENSE("GPL");
