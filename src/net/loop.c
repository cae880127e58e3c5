/* The event loop: epoll for I/O, a binary min-heap for timers, signalfd for SIGTERM, SIGINT and
 * SIGHUP, an eventfd for tasks posted from other threads. See cfl/loop.h for the contract.
 *
 * Two details keep callbacks from seeing stale events. Each watcher slot (indexed by fd) has a
 * generation that is stored with the fd in the epoll event's data and bumped on every unwatch,
 * so an event already fetched for an fd that was unwatched (and maybe reused by a new socket)
 * in the same round is dropped. Timer ids carry their slot's generation the same way, so
 * cancelling an id that has fired cannot cancel the slot's next occupant. */
#define _GNU_SOURCE
#include "cfl/loop.h"

#include "cfl/log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define MAX_FD     (1 << 24) /* far above any RLIMIT_NOFILE we expect; bounds the table */

struct watcher {
	cfl_loop_io_fn fn;
	void *arg;
	int events;   /* bits asked for; 0 with `in_epoll` set never happens */
	int in_epoll; /* currently registered with the kernel */
	int known;    /* slot in use (watched, maybe with 0 bits) */
	uint32_t gen; /* bumped on unwatch; stored in the epoll data */
};

struct timer {
	uint64_t when; /* deadline, ms on the monotonic clock */
	uint64_t seq;  /* arming order: ties and "next round" semantics */
	cfl_loop_timer_fn fn;
	void *arg;
	uint32_t gen;      /* part of the id */
	uint32_t heap_pos; /* index in loop->heap while armed */
	uint32_t next_free;
	int armed;
};

struct task {
	cfl_loop_task_fn fn;
	void *arg;
	struct task *next;
};

struct cfl_loop {
	int epfd;
	int stop;
	struct watcher *w; /* indexed by fd */
	size_t nw;

	struct timer *slots;
	uint32_t nslots;
	uint32_t free_head; /* slot index + 1; 0 = none free */
	uint32_t *heap;     /* slot indices, ordered by (when, seq) */
	uint32_t heap_len;
	uint64_t seq;

	int sigfd;
	cfl_loop_signal_fn sig_fn;
	void *sig_arg;
	sigset_t old_mask;
	int mask_saved;

	int evfd;
	pthread_mutex_t post_lock;
	struct task *post_head, *post_tail;

	struct epoll_event events[MAX_EVENTS];
};

uint64_t cfl_loop_now_ms(const struct cfl_loop *loop)
{
	struct timespec ts;

	(void)loop;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* --- file descriptors ------------------------------------------------------------------ */

static int grow_watchers(struct cfl_loop *loop, int fd)
{
	size_t n = loop->nw ? loop->nw : 64;
	struct watcher *w;

	while (n <= (size_t)fd)
		n *= 2;
	w = realloc(loop->w, n * sizeof(*w));
	if (w == NULL)
		return CFL_ENOMEM;
	memset(w + loop->nw, 0, (n - loop->nw) * sizeof(*w));
	loop->w = w;
	loop->nw = n;
	return 0;
}

static uint32_t ep_bits(int events)
{
	return ((events & CFL_EV_READ) ? EPOLLIN : 0u) | ((events & CFL_EV_WRITE) ? EPOLLOUT : 0u);
}

/* Brings the kernel's registration of `fd` in line with w->events. */
static int sync_epoll(struct cfl_loop *loop, int fd, struct watcher *w)
{
	struct epoll_event ev;
	int op;

	memset(&ev, 0, sizeof(ev));
	ev.events = ep_bits(w->events);
	ev.data.u64 = ((uint64_t)w->gen << 32) | (uint32_t)fd;
	if (w->events == 0) {
		/* Even with no bits asked for, epoll reports errors and hang-ups; a quiet fd must
		 * leave the set or a level-triggered HUP would spin the loop. */
		if (w->in_epoll)
			(void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
		w->in_epoll = 0;
		return 0;
	}
	op = w->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(loop->epfd, op, fd, &ev) != 0) {
		/* The fd may have been closed and reused without an unwatch (the kernel dropped
		 * it), or registered behind our back: retry with the other operation. */
		if (op == EPOLL_CTL_MOD && errno == ENOENT)
			op = EPOLL_CTL_ADD;
		else if (op == EPOLL_CTL_ADD && errno == EEXIST)
			op = EPOLL_CTL_MOD;
		else
			return CFL_EIO;
		if (epoll_ctl(loop->epfd, op, fd, &ev) != 0)
			return CFL_EIO;
	}
	w->in_epoll = 1;
	return 0;
}

int cfl_loop_watch(struct cfl_loop *loop, int fd, int events, cfl_loop_io_fn fn, void *arg)
{
	struct watcher *w;
	int rc;

	if (loop == NULL || fd < 0 || fd >= MAX_FD || fn == NULL ||
	    (events & ~(CFL_EV_READ | CFL_EV_WRITE)) != 0)
		return CFL_EINVAL;
	if ((size_t)fd >= loop->nw && (rc = grow_watchers(loop, fd)) != 0)
		return rc;
	w = &loop->w[fd];
	w->fn = fn;
	w->arg = arg;
	w->known = 1;
	if (w->events == events && (w->in_epoll || events == 0))
		return 0;
	w->events = events;
	rc = sync_epoll(loop, fd, w);
	if (rc != 0) {
		w->known = 0;
		w->events = 0;
		w->gen++;
	}
	return rc;
}

void cfl_loop_unwatch(struct cfl_loop *loop, int fd)
{
	struct watcher *w;

	if (loop == NULL || fd < 0 || (size_t)fd >= loop->nw || !loop->w[fd].known)
		return;
	w = &loop->w[fd];
	if (w->in_epoll)
		(void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	w->in_epoll = 0;
	w->known = 0;
	w->events = 0;
	w->fn = NULL;
	w->arg = NULL;
	w->gen++;
}

int cfl_loop_watching(const struct cfl_loop *loop, int fd)
{
	if (loop == NULL || fd < 0 || (size_t)fd >= loop->nw || !loop->w[fd].known)
		return 0;
	return loop->w[fd].events;
}

/* Runs the callback for one fetched event unless its watcher went away meanwhile. */
static int dispatch_io(struct cfl_loop *loop, const struct epoll_event *ev)
{
	int fd = (int)(uint32_t)ev->data.u64;
	uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
	struct watcher *w;
	int ready = 0;

	if ((size_t)fd >= loop->nw)
		return 0;
	w = &loop->w[fd];
	if (!w->known || w->gen != gen)
		return 0;
	if (ev->events & (EPOLLIN | EPOLLRDHUP))
		ready |= CFL_EV_READ;
	if (ev->events & EPOLLOUT)
		ready |= CFL_EV_WRITE;
	if (ev->events & (EPOLLERR | EPOLLHUP))
		ready |= CFL_EV_READ | CFL_EV_WRITE;
	ready &= w->events;
	if (ready == 0)
		return 0;
	w->fn(loop, fd, ready, w->arg);
	return 1;
}

/* --- timers ---------------------------------------------------------------------------- */

static int timer_before(const struct cfl_loop *loop, uint32_t a, uint32_t b)
{
	const struct timer *x = &loop->slots[a], *y = &loop->slots[b];

	return x->when < y->when || (x->when == y->when && x->seq < y->seq);
}

static void heap_set(struct cfl_loop *loop, uint32_t pos, uint32_t slot)
{
	loop->heap[pos] = slot;
	loop->slots[slot].heap_pos = pos;
}

static void heap_up(struct cfl_loop *loop, uint32_t pos)
{
	uint32_t slot = loop->heap[pos];

	while (pos > 0) {
		uint32_t parent = (pos - 1) / 2;

		if (!timer_before(loop, slot, loop->heap[parent]))
			break;
		heap_set(loop, pos, loop->heap[parent]);
		pos = parent;
	}
	heap_set(loop, pos, slot);
}

static void heap_down(struct cfl_loop *loop, uint32_t pos)
{
	uint32_t slot = loop->heap[pos];

	for (;;) {
		uint32_t child = 2 * pos + 1;

		if (child >= loop->heap_len)
			break;
		if (child + 1 < loop->heap_len &&
		    timer_before(loop, loop->heap[child + 1], loop->heap[child]))
			child++;
		if (!timer_before(loop, loop->heap[child], slot))
			break;
		heap_set(loop, pos, loop->heap[child]);
		pos = child;
	}
	heap_set(loop, pos, slot);
}

/* Takes the timer at heap position `pos` out of the heap and frees its slot. */
static void heap_remove(struct cfl_loop *loop, uint32_t pos)
{
	uint32_t slot = loop->heap[pos];
	struct timer *t = &loop->slots[slot];

	loop->heap_len--;
	if (pos < loop->heap_len) {
		uint32_t moved = loop->heap[loop->heap_len];

		/* The last entry fills the hole and sinks or rises to its place. */
		heap_set(loop, pos, moved);
		heap_down(loop, pos);
		heap_up(loop, loop->slots[moved].heap_pos);
	}
	t->armed = 0;
	t->fn = NULL;
	t->arg = NULL;
	t->next_free = loop->free_head;
	loop->free_head = slot + 1;
}

/* Doubles the slot table (and the heap, which never holds more entries than slots). */
static int grow_timers(struct cfl_loop *loop)
{
	uint32_t n = loop->nslots ? loop->nslots * 2 : 64, i;
	struct timer *s;
	uint32_t *h;

	if (n > (UINT32_MAX >> 1))
		return CFL_ENOMEM;
	s = realloc(loop->slots, (size_t)n * sizeof(*s));
	if (s == NULL)
		return CFL_ENOMEM;
	loop->slots = s;
	h = realloc(loop->heap, (size_t)n * sizeof(*h));
	if (h == NULL)
		return CFL_ENOMEM; /* the larger slot table is kept; harmless */
	loop->heap = h;
	for (i = n; i > loop->nslots; i--) {
		memset(&s[i - 1], 0, sizeof(s[i - 1]));
		s[i - 1].next_free = loop->free_head;
		loop->free_head = i;
	}
	loop->nslots = n;
	return 0;
}

uint64_t cfl_loop_timer_add(struct cfl_loop *loop, uint64_t delay_ms, cfl_loop_timer_fn fn,
                            void *arg)
{
	uint32_t slot;
	struct timer *t;
	uint64_t now = cfl_loop_now_ms(loop);

	if (loop == NULL || fn == NULL)
		return 0;
	if (loop->free_head == 0 && grow_timers(loop) != 0)
		return 0;
	slot = loop->free_head - 1;
	t = &loop->slots[slot];
	loop->free_head = t->next_free;
	t->when = delay_ms > UINT64_MAX - now ? UINT64_MAX : now + delay_ms;
	t->seq = loop->seq++;
	t->fn = fn;
	t->arg = arg;
	t->gen++;
	t->armed = 1;
	loop->heap[loop->heap_len] = slot;
	loop->heap_len++;
	heap_up(loop, loop->heap_len - 1);
	return ((uint64_t)t->gen << 32) | (slot + 1u);
}

int cfl_loop_timer_cancel(struct cfl_loop *loop, uint64_t id)
{
	uint32_t slot = (uint32_t)id, gen = (uint32_t)(id >> 32);
	struct timer *t;

	if (loop == NULL || slot == 0 || slot > loop->nslots)
		return CFL_ENOENT;
	t = &loop->slots[slot - 1];
	if (!t->armed || t->gen != gen)
		return CFL_ENOENT;
	heap_remove(loop, t->heap_pos);
	return 0;
}

/* Milliseconds until the first timer is due (0 if one is), or -1 with no timer. */
static int next_timeout(const struct cfl_loop *loop)
{
	uint64_t now, when;

	if (loop->heap_len == 0)
		return -1;
	when = loop->slots[loop->heap[0]].when;
	now = cfl_loop_now_ms(loop);
	if (when <= now)
		return 0;
	return when - now > INT32_MAX ? INT32_MAX : (int)(when - now);
}

/* Runs the timers due now that were armed before this round's timer phase began; timers the
 * callbacks arm (even with delay 0) wait for the next round, so a re-arming timer cannot
 * starve I/O. */
static int run_timers(struct cfl_loop *loop)
{
	uint64_t now = cfl_loop_now_ms(loop), seq_limit = loop->seq;
	int ran = 0;

	while (loop->heap_len > 0) {
		uint32_t slot = loop->heap[0];
		struct timer *t = &loop->slots[slot];
		cfl_loop_timer_fn fn = t->fn;
		void *arg = t->arg;
		uint64_t id;

		if (t->when > now || t->seq >= seq_limit)
			break;
		id = ((uint64_t)t->gen << 32) | (slot + 1u);
		heap_remove(loop, 0);
		fn(loop, id, arg);
		ran++;
	}
	return ran;
}

/* --- signals and posted tasks ---------------------------------------------------------- */

static void on_signalfd(struct cfl_loop *loop, int fd, int events, void *arg)
{
	struct signalfd_siginfo si;

	(void)events;
	(void)arg;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (loop->sig_fn != NULL)
			loop->sig_fn(loop, (int)si.ssi_signo, loop->sig_arg);
	}
}

int cfl_loop_on_signal(struct cfl_loop *loop, cfl_loop_signal_fn fn, void *arg, struct cfl_err *e)
{
	sigset_t set;

	if (loop == NULL || fn == NULL)
		return cfl_err_set(e, CFL_EINVAL, "no loop or signal callback");
	loop->sig_fn = fn;
	loop->sig_arg = arg;
	if (loop->sigfd >= 0)
		return 0;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, &loop->old_mask) != 0)
		return cfl_err_set(e, CFL_EIO, "cannot block SIGTERM/SIGINT/SIGHUP");
	loop->mask_saved = 1;
	loop->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (loop->sigfd < 0)
		return cfl_err_set(e, CFL_EIO, "cannot create a signalfd: %s", strerror(errno));
	if (cfl_loop_watch(loop, loop->sigfd, CFL_EV_READ, on_signalfd, NULL) != 0)
		return cfl_err_set(e, CFL_EIO, "cannot watch the signalfd");
	return 0;
}

int cfl_loop_post(struct cfl_loop *loop, cfl_loop_task_fn fn, void *arg)
{
	struct task *t;
	uint64_t one = 1;

	if (loop == NULL || fn == NULL)
		return CFL_EINVAL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return CFL_ENOMEM;
	t->fn = fn;
	t->arg = arg;
	pthread_mutex_lock(&loop->post_lock);
	if (loop->post_tail != NULL)
		loop->post_tail->next = t;
	else
		loop->post_head = t;
	loop->post_tail = t;
	pthread_mutex_unlock(&loop->post_lock);
	/* A full eventfd counter (EAGAIN) still wakes the loop, so the result does not matter. */
	if (write(loop->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		CFL_DEBUG("loop: eventfd write failed: %s", strerror(errno));
	return 0;
}

static struct task *take_tasks(struct cfl_loop *loop)
{
	struct task *list;

	pthread_mutex_lock(&loop->post_lock);
	list = loop->post_head;
	loop->post_head = loop->post_tail = NULL;
	pthread_mutex_unlock(&loop->post_lock);
	return list;
}

static void on_eventfd(struct cfl_loop *loop, int fd, int events, void *arg)
{
	uint64_t count;

	(void)loop;
	(void)events;
	(void)arg;
	/* Only drains the counter: the tasks run in the task phase of this round. */
	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		CFL_DEBUG("loop: eventfd read failed: %s", strerror(errno));
}

static int run_tasks(struct cfl_loop *loop)
{
	struct task *t = take_tasks(loop), *next;
	int ran = 0;

	for (; t != NULL; t = next) {
		next = t->next;
		t->fn(loop, t->arg);
		free(t);
		ran++;
	}
	return ran;
}

/* --- the loop -------------------------------------------------------------------------- */

int cfl_loop_new(struct cfl_loop **out, struct cfl_err *e)
{
	struct cfl_loop *loop;
	struct sigaction sa;

	*out = NULL;
	loop = calloc(1, sizeof(*loop));
	if (loop == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	loop->sigfd = -1;
	loop->evfd = -1;
	pthread_mutex_init(&loop->post_lock, NULL);
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		cfl_err_set(e, CFL_EIO, "cannot create an epoll instance: %s", strerror(errno));
		goto fail;
	}
	loop->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (loop->evfd < 0) {
		cfl_err_set(e, CFL_EIO, "cannot create an eventfd: %s", strerror(errno));
		goto fail;
	}
	if (cfl_loop_watch(loop, loop->evfd, CFL_EV_READ, on_eventfd, NULL) != 0) {
		cfl_err_set(e, CFL_EIO, "cannot watch the eventfd");
		goto fail;
	}
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_IGN;
		(void)sigaction(SIGPIPE, &sa, NULL);
	}
	*out = loop;
	return 0;
fail:
	cfl_loop_free(loop);
	return e != NULL ? e->code : CFL_EIO;
}

void cfl_loop_free(struct cfl_loop *loop)
{
	struct task *t, *next;

	if (loop == NULL)
		return;
	if (loop->sigfd >= 0)
		close(loop->sigfd);
	if (loop->mask_saved)
		pthread_sigmask(SIG_SETMASK, &loop->old_mask, NULL);
	if (loop->evfd >= 0)
		close(loop->evfd);
	if (loop->epfd >= 0)
		close(loop->epfd);
	for (t = take_tasks(loop); t != NULL; t = next) {
		next = t->next;
		free(t);
	}
	pthread_mutex_destroy(&loop->post_lock);
	free(loop->w);
	free(loop->slots);
	free(loop->heap);
	free(loop);
}

int cfl_loop_run_once(struct cfl_loop *loop, int max_wait_ms)
{
	int timeout = next_timeout(loop), n, i, ran = 0;

	if (max_wait_ms >= 0 && (timeout < 0 || max_wait_ms < timeout))
		timeout = max_wait_ms;
	n = epoll_wait(loop->epfd, loop->events, MAX_EVENTS, timeout);
	if (n < 0) {
		if (errno != EINTR)
			return CFL_EIO;
		n = 0;
	}
	for (i = 0; i < n; i++)
		ran += dispatch_io(loop, &loop->events[i]);
	ran += run_timers(loop);
	ran += run_tasks(loop);
	return ran;
}

int cfl_loop_run(struct cfl_loop *loop)
{
	int rc = 0;

	loop->stop = 0;
	while (!loop->stop) {
		rc = cfl_loop_run_once(loop, -1);
		if (rc < 0)
			return rc;
	}
	loop->stop = 0;
	return 0;
}

void cfl_loop_stop(struct cfl_loop *loop)
{
	if (loop != NULL)
		loop->stop = 1;
}
