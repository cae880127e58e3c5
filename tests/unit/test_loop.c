/* Unit tests for the event loop (src/net/loop.c): timers, fds, signals, posted tasks. Every
 * wait has a deadline; every fd opened is closed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cfl/err.h"
#include "cfl/loop.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define DEADLINE_MS 3000

struct rec {
	int order[64];
	int n;
};

static struct cfl_loop *mkloop(void)
{
	struct cfl_loop *loop = NULL;
	struct cfl_err e;

	assert_int_equal(cfl_loop_new(&loop, &e), 0);
	return loop;
}

/* Runs rounds until *flag reaches `want` or the deadline passes; returns 1 if it did. */
static int run_until(struct cfl_loop *loop, const int *flag, int want)
{
	uint64_t end = cfl_loop_now_ms(loop) + DEADLINE_MS;

	while (*flag < want && cfl_loop_now_ms(loop) < end)
		assert_true(cfl_loop_run_once(loop, 50) >= 0);
	return *flag >= want;
}

static void record(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct rec *r = arg;

	(void)loop;
	(void)id;
	r->order[r->n++] = 1;
}

struct tagged {
	struct rec *r;
	int tag;
};

static void record_tag(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct tagged *t = arg;

	(void)loop;
	(void)id;
	t->r->order[t->r->n++] = t->tag;
}

static void test_timers_in_order(void **state)
{
	struct cfl_loop *loop = mkloop();
	struct rec r = {{0}, 0};
	struct tagged t[3] = {{&r, 30}, {&r, 10}, {&r, 20}};
	uint64_t start = cfl_loop_now_ms(loop);
	int i;

	(void)state;
	for (i = 0; i < 3; i++)
		assert_int_not_equal(
		        cfl_loop_timer_add(loop, (uint64_t)t[i].tag, record_tag, &t[i]), 0);
	assert_true(run_until(loop, &r.n, 3));
	assert_int_equal(r.order[0], 10);
	assert_int_equal(r.order[1], 20);
	assert_int_equal(r.order[2], 30);
	assert_true(cfl_loop_now_ms(loop) - start >= 30);
	cfl_loop_free(loop);
}

static void test_timer_cancel(void **state)
{
	struct cfl_loop *loop = mkloop();
	struct rec r = {{0}, 0}, never = {{0}, 0};
	uint64_t a, b;

	(void)state;
	a = cfl_loop_timer_add(loop, 10, record, &r);
	b = cfl_loop_timer_add(loop, 5, record, &never);
	assert_int_equal(cfl_loop_timer_cancel(loop, b), 0);
	assert_int_equal(cfl_loop_timer_cancel(loop, b), CFL_ENOENT);
	assert_int_equal(cfl_loop_timer_cancel(loop, 0), CFL_ENOENT);
	assert_true(run_until(loop, &r.n, 1));
	assert_int_equal(never.n, 0);
	/* An id that fired stays dead, even after its slot is reused. */
	assert_int_equal(cfl_loop_timer_cancel(loop, a), CFL_ENOENT);
	b = cfl_loop_timer_add(loop, 1000, record, &never);
	assert_int_not_equal(a, b);
	assert_int_equal(cfl_loop_timer_cancel(loop, a), CFL_ENOENT);
	assert_int_equal(cfl_loop_timer_cancel(loop, b), 0);
	cfl_loop_free(loop);
}

/* Many timers, half cancelled at random: the rest fire in deadline order, none twice. */
struct many {
	uint64_t when[1000];
	int fired[1000];
	uint64_t last_when;
	uint64_t slack; /* how far the clock moved while the timers were added */
	int n_fired, out_of_order;
};

struct many_arg {
	struct many *m;
	int i;
};

static void many_fire(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct many_arg *a = arg;

	(void)loop;
	(void)id;
	/* `when` is the test's reading of the clock plus the delay; the loop read the clock again
	 * inside timer_add, so on a loaded machine two deadlines may differ by the ticks that
	 * passed between: only an inversion beyond that is out of order. */
	if (a->m->when[a->i] + a->m->slack < a->m->last_when)
		a->m->out_of_order++;
	a->m->last_when = a->m->when[a->i];
	a->m->fired[a->i]++;
	a->m->n_fired++;
}

static void test_timer_heap(void **state)
{
	struct cfl_loop *loop = mkloop();
	struct many *m = calloc(1, sizeof(*m));
	struct many_arg *args = calloc(1000, sizeof(*args));
	uint64_t ids[1000], t0;
	int i, live = 0;

	(void)state;
	srand(7);
	t0 = cfl_loop_now_ms(loop);
	for (i = 0; i < 1000; i++) {
		uint64_t delay = (uint64_t)(rand() % 60);

		args[i].m = m;
		args[i].i = i;
		m->when[i] = cfl_loop_now_ms(loop) + delay;
		ids[i] = cfl_loop_timer_add(loop, delay, many_fire, &args[i]);
		assert_int_not_equal(ids[i], 0);
	}
	m->slack = cfl_loop_now_ms(loop) - t0;
	for (i = 0; i < 1000; i++) {
		if (rand() % 2)
			assert_int_equal(cfl_loop_timer_cancel(loop, ids[i]), 0);
		else
			live++;
	}
	assert_true(run_until(loop, &m->n_fired, live));
	assert_int_equal(cfl_loop_run_once(loop, 80), 0); /* nothing else fires */
	assert_int_equal(m->n_fired, live);
	assert_int_equal(m->out_of_order, 0);
	for (i = 0; i < 1000; i++)
		assert_true(m->fired[i] <= 1);
	free(args);
	free(m);
	cfl_loop_free(loop);
}

/* A timer that re-arms itself with delay 0 runs once per round, so I/O still gets its turn. */
struct rearm {
	int runs;
	int io_seen;
};

static void rearm_fn(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct rearm *r = arg;

	(void)id;
	r->runs++;
	if (r->io_seen == 0 && r->runs < 10000)
		cfl_loop_timer_add(loop, 0, rearm_fn, r);
}

static void on_pipe_read(struct cfl_loop *loop, int fd, int events, void *arg)
{
	int *seen = arg;
	char b;

	(void)loop;
	assert_true(events & CFL_EV_READ);
	assert_int_equal(read(fd, &b, 1), 1);
	(*seen)++;
}

static void test_zero_timer_does_not_starve_io(void **state)
{
	struct cfl_loop *loop = mkloop();
	struct rearm r = {0, 0};
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(cfl_loop_watch(loop, p[0], CFL_EV_READ, on_pipe_read, &r.io_seen), 0);
	cfl_loop_timer_add(loop, 0, rearm_fn, &r);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_true(run_until(loop, &r.io_seen, 1));
	assert_true(r.runs < 10);
	cfl_loop_unwatch(loop, p[0]);
	close(p[0]);
	close(p[1]);
	cfl_loop_free(loop);
}

static void on_writable(struct cfl_loop *loop, int fd, int events, void *arg)
{
	int *seen = arg;

	(void)fd;
	assert_true(events & CFL_EV_WRITE);
	(*seen)++;
	cfl_loop_unwatch(loop, fd);
}

static void test_fd_read_write_unwatch(void **state)
{
	struct cfl_loop *loop = mkloop();
	int p[2], reads = 0, writes = 0;

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(cfl_loop_watch(loop, -1, CFL_EV_READ, on_pipe_read, &reads), CFL_EINVAL);
	assert_int_equal(cfl_loop_watch(loop, p[0], CFL_EV_READ, on_pipe_read, &reads), 0);
	assert_int_equal(cfl_loop_watching(loop, p[0]), CFL_EV_READ);
	assert_int_equal(cfl_loop_run_once(loop, 20), 0); /* nothing to read yet */
	assert_int_equal(write(p[1], "ab", 2), 2);
	assert_true(run_until(loop, &reads, 2));
	/* Quiet (0 bits) and unwatched fds get no callback. */
	assert_int_equal(cfl_loop_watch(loop, p[0], 0, on_pipe_read, &reads), 0);
	assert_int_equal(write(p[1], "c", 1), 1);
	assert_int_equal(cfl_loop_run_once(loop, 20), 0);
	assert_int_equal(cfl_loop_watch(loop, p[0], CFL_EV_READ, on_pipe_read, &reads), 0);
	assert_true(run_until(loop, &reads, 3));
	cfl_loop_unwatch(loop, p[0]);
	assert_int_equal(cfl_loop_watching(loop, p[0]), 0);
	assert_int_equal(write(p[1], "d", 1), 1);
	assert_int_equal(cfl_loop_run_once(loop, 20), 0);
	/* The write end is writable at once. */
	assert_int_equal(cfl_loop_watch(loop, p[1], CFL_EV_WRITE, on_writable, &writes), 0);
	assert_true(run_until(loop, &writes, 1));
	close(p[0]);
	close(p[1]);
	cfl_loop_free(loop);
}

/* Two fds ready in the same round: the first callback unwatches the second, which then must
 * not be called with the event already fetched. */
struct pair {
	int fds[2];
	int calls[2];
};

static void on_pair(struct cfl_loop *loop, int fd, int events, void *arg)
{
	struct pair *p = arg;
	int me = fd == p->fds[0] ? 0 : 1;
	char b;

	(void)events;
	p->calls[me]++;
	assert_int_equal(read(fd, &b, 1), 1);
	cfl_loop_unwatch(loop, p->fds[1 - me]);
}

static void test_unwatch_drops_fetched_event(void **state)
{
	struct cfl_loop *loop = mkloop();
	struct pair p;
	int a[2], b[2];

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(pipe(a), 0);
	assert_int_equal(pipe(b), 0);
	p.fds[0] = a[0];
	p.fds[1] = b[0];
	assert_int_equal(cfl_loop_watch(loop, a[0], CFL_EV_READ, on_pair, &p), 0);
	assert_int_equal(cfl_loop_watch(loop, b[0], CFL_EV_READ, on_pair, &p), 0);
	assert_int_equal(write(a[1], "x", 1), 1);
	assert_int_equal(write(b[1], "y", 1), 1);
	assert_int_equal(cfl_loop_run_once(loop, 200), 1);
	assert_int_equal(p.calls[0] + p.calls[1], 1);
	cfl_loop_unwatch(loop, a[0]);
	cfl_loop_unwatch(loop, b[0]);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	cfl_loop_free(loop);
}

/* Hundreds of fds on one loop, all ready at once. */
static void test_many_fds(void **state)
{
	struct cfl_loop *loop = mkloop();
	struct rlimit rl;
	int n, i, seen = 0;
	int(*p)[2];

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 4096 && rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	n = (int)((rl.rlim_cur - 64) / 2);
	if (n > 1500)
		n = 1500;
	p = calloc((size_t)n, sizeof(*p));
	for (i = 0; i < n; i++) {
		assert_int_equal(pipe(p[i]), 0);
		assert_int_equal(cfl_loop_watch(loop, p[i][0], CFL_EV_READ, on_pipe_read, &seen),
		                 0);
		assert_int_equal(write(p[i][1], "z", 1), 1);
	}
	assert_true(run_until(loop, &seen, n));
	assert_int_equal(seen, n);
	for (i = 0; i < n; i++) {
		cfl_loop_unwatch(loop, p[i][0]);
		close(p[i][0]);
		close(p[i][1]);
	}
	free(p);
	cfl_loop_free(loop);
}

static void on_sig(struct cfl_loop *loop, int signo, void *arg)
{
	int *got = arg;

	*got = signo;
	cfl_loop_stop(loop);
}

static void on_deadline(struct cfl_loop *loop, uint64_t id, void *arg)
{
	(void)id;
	(void)arg;
	cfl_loop_stop(loop);
}

static void test_signals(void **state)
{
	struct cfl_loop *loop = mkloop();
	struct cfl_err e;
	int got = 0;
	uint64_t t;

	(void)state;
	assert_int_equal(cfl_loop_on_signal(loop, on_sig, &got, &e), 0);
	assert_int_equal(raise(SIGTERM), 0);
	t = cfl_loop_timer_add(loop, DEADLINE_MS, on_deadline, NULL);
	assert_int_equal(cfl_loop_run(loop), 0);
	assert_int_equal(got, SIGTERM);
	got = 0;
	assert_int_equal(raise(SIGINT), 0);
	assert_int_equal(cfl_loop_run(loop), 0);
	assert_int_equal(got, SIGINT);
	cfl_loop_timer_cancel(loop, t);
	cfl_loop_free(loop);
}

struct post_state {
	struct cfl_loop *loop;
	int ran;
	pthread_t runner;
	int same_thread;
};

static void task(struct cfl_loop *loop, void *arg)
{
	struct post_state *s = arg;

	(void)loop;
	s->same_thread = pthread_equal(pthread_self(), s->runner);
	s->ran++;
}

static void *poster(void *arg)
{
	struct post_state *s = arg;
	int i;

	for (i = 0; i < 100; i++)
		assert_int_equal(cfl_loop_post(s->loop, task, s), 0);
	return NULL;
}

static void test_post_from_thread(void **state)
{
	struct post_state s;
	pthread_t th;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.loop = mkloop();
	s.runner = pthread_self();
	assert_int_equal(pthread_create(&th, NULL, poster, &s), 0);
	assert_true(run_until(s.loop, &s.ran, 100));
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(s.ran, 100);
	assert_true(s.same_thread);
	cfl_loop_free(s.loop);
}

static void test_run_stop(void **state)
{
	struct cfl_loop *loop = mkloop();
	uint64_t start = cfl_loop_now_ms(loop);

	(void)state;
	cfl_loop_timer_add(loop, 20, on_deadline, NULL);
	assert_int_equal(cfl_loop_run(loop), 0);
	assert_true(cfl_loop_now_ms(loop) - start >= 20);
	assert_true(cfl_loop_now_ms(loop) - start < DEADLINE_MS);
	cfl_loop_free(NULL);
	cfl_loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_timers_in_order),
	        cmocka_unit_test(test_timer_cancel),
	        cmocka_unit_test(test_timer_heap),
	        cmocka_unit_test(test_zero_timer_does_not_starve_io),
	        cmocka_unit_test(test_fd_read_write_unwatch),
	        cmocka_unit_test(test_unwatch_drops_fetched_event),
	        cmocka_unit_test(test_many_fds),
	        cmocka_unit_test(test_signals),
	        cmocka_unit_test(test_post_from_thread),
	        cmocka_unit_test(test_run_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
