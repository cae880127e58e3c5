/* The event loop: one epoll instance, one thread, callbacks (the redis "ae" model).
 *
 * A loop watches file descriptors for readability/writability, runs one-shot timers and turns
 * SIGTERM/SIGINT/SIGHUP into a callback through a signalfd. Everything in cfl's network core (TLS
 * connections, listeners, streams) is driven by one of these; there is no thread per
 * connection. Readiness is level-triggered: a callback that leaves data unread is called again.
 *
 * Threads: a loop and everything registered on it belong to the thread that runs it. Every
 * function here must be called from that thread, except cfl_loop_post(), which any thread may
 * call. Callbacks run on the loop thread, one at a time, and may call any loop function
 * (including unwatching or cancelling themselves, or stopping the loop).
 *
 * Errors are negative CFL_E* codes (cfl/err.h). */
#ifndef CFL_LOOP_H
#define CFL_LOOP_H

#include "cfl/err.h"

#include <stdint.h>

struct cfl_loop;

/* Event bits for cfl_loop_watch() and the callbacks. An error or hang-up on the fd is reported
 * as both (the callback's next read or write then returns the error). */
enum cfl_loop_ev {
	CFL_EV_READ = 1 << 0,
	CFL_EV_WRITE = 1 << 1,
};

/* Called when `fd` is ready; `events` is the ready subset of the watched bits. */
typedef void (*cfl_loop_io_fn)(struct cfl_loop *loop, int fd, int events, void *arg);
/* Called once when timer `id` expires; the timer is gone by the time this runs. */
typedef void (*cfl_loop_timer_fn)(struct cfl_loop *loop, uint64_t id, void *arg);
/* Called on the loop thread for each SIGTERM/SIGINT/SIGHUP received (signo says which). */
typedef void (*cfl_loop_signal_fn)(struct cfl_loop *loop, int signo, void *arg);
/* A function run on the loop thread on behalf of another thread (cfl_loop_post). */
typedef void (*cfl_loop_task_fn)(struct cfl_loop *loop, void *arg);

/* Creates a loop. Also sets SIGPIPE to ignored if it was at its default, so that writing to a
 * socket the peer closed is an error (EPIPE) for the connection rather than the death of the
 * process. Returns 0 and *out (free with cfl_loop_free), or CFL_ENOMEM/CFL_EIO with `e` set. */
int cfl_loop_new(struct cfl_loop **out, struct cfl_err *e);

/* Frees the loop: closes its epoll and signal fds and drops every watcher, timer and posted
 * task without calling them. The watched fds themselves are not closed (their owners do that).
 * Restores the signal mask changed by cfl_loop_on_signal(). NULL is a no-op. Not from inside a
 * callback of this loop. */
void cfl_loop_free(struct cfl_loop *loop);

/* Watches `fd` for exactly the `events` bits (CFL_EV_READ | CFL_EV_WRITE), calling fn(arg)
 * when any is ready. Calling it again for the same fd replaces the bits, function and argument
 * (cheap when only the bits change: use it to turn write interest on and off). `events` 0 keeps
 * the fd registered but quiet. Returns 0, CFL_EINVAL (bad fd), CFL_ENOMEM or CFL_EIO. */
int cfl_loop_watch(struct cfl_loop *loop, int fd, int events, cfl_loop_io_fn fn, void *arg);

/* Stops watching `fd`; no callback for it runs after this returns, even one already reported
 * in the current round. Call it before closing the fd. Unknown fds are ignored. */
void cfl_loop_unwatch(struct cfl_loop *loop, int fd);

/* The bits `fd` is watched for, 0 if it is not watched. */
int cfl_loop_watching(const struct cfl_loop *loop, int fd);

/* Arms a one-shot timer that calls fn(arg) after `delay_ms` milliseconds (0: on the next round,
 * after the I/O callbacks of this one). Timers due in the same round run in deadline order.
 * Returns the timer's id, never 0, or 0 if memory ran out. Ids are not reused for a long time
 * (2^32 arms of the same slot), so cancelling an id that already fired is harmless. */
uint64_t cfl_loop_timer_add(struct cfl_loop *loop, uint64_t delay_ms, cfl_loop_timer_fn fn,
                            void *arg);

/* Cancels timer `id`. Returns 0, or CFL_ENOENT if it already ran, was cancelled or never
 * existed (id 0 included): callers may cancel unconditionally. */
int cfl_loop_timer_cancel(struct cfl_loop *loop, uint64_t id);

/* Milliseconds on CLOCK_MONOTONIC (an arbitrary origin; only differences mean anything). Reads
 * the clock on each call; usable from any thread (the argument may be NULL). */
uint64_t cfl_loop_now_ms(const struct cfl_loop *loop);

/* Routes SIGTERM, SIGINT and SIGHUP (a reload, where the caller reloads something) to fn(arg)
 * on the loop thread: blocks them in the calling thread and reads them from a signalfd. Call
 * it from the main thread before starting any other thread, so that they inherit the blocked
 * mask (otherwise the kernel may deliver the signal to a thread where it is not blocked and its
 * default action kills the process). A second call replaces fn/arg. Returns 0 or CFL_EIO with
 * `e` set. */
int cfl_loop_on_signal(struct cfl_loop *loop, cfl_loop_signal_fn fn, void *arg, struct cfl_err *e);

/* Runs fn(arg) on the loop thread in the next round. The one function here that any thread may
 * call (it wakes the loop through an eventfd); tasks run in the order posted. Returns 0 or
 * CFL_ENOMEM. A task posted to a loop that is freed before it runs is dropped. */
int cfl_loop_post(struct cfl_loop *loop, cfl_loop_task_fn fn, void *arg);

/* Runs rounds until cfl_loop_stop(). Returns 0 after a stop, or CFL_EIO if epoll fails. */
int cfl_loop_run(struct cfl_loop *loop);

/* Runs one round: waits for I/O at most `max_wait_ms` (-1: until the next timer or event;
 * 0: poll), then runs the ready I/O callbacks and the due timers and tasks. Returns the number
 * of callbacks run (0 when the wait ended empty), or CFL_EIO. For tests and for programs with
 * their own outer loop. */
int cfl_loop_run_once(struct cfl_loop *loop, int max_wait_ms);

/* Makes cfl_loop_run() return after the current round. May be called from a callback. */
void cfl_loop_stop(struct cfl_loop *loop);

#endif
