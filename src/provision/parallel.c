/* A loop over independent items on every core: provisioning makes one key, certificate and
 * kit per participant, and none depends on another. */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#define MAX_THREADS 16

struct pool {
	size_t n;
	int (*fn)(void *arg, size_t i, struct cfl_err *e);
	void *arg;
	atomic_size_t next;
	atomic_int stop;
	pthread_mutex_t lock;
	size_t failed_at; /* the lowest failing index, SIZE_MAX when none */
	int rc;
	struct cfl_err err;
};

static void *worker(void *arg)
{
	struct pool *p = arg;
	struct cfl_err e = {0};
	size_t i;
	int rc;

	while (!atomic_load(&p->stop) && (i = atomic_fetch_add(&p->next, 1)) < p->n) {
		if ((rc = p->fn(p->arg, i, &e)) == 0)
			continue;
		pthread_mutex_lock(&p->lock);
		if (i < p->failed_at) {
			p->failed_at = i;
			p->rc = rc;
			p->err = e;
		}
		pthread_mutex_unlock(&p->lock);
		atomic_store(&p->stop, 1);
	}
	return NULL;
}

static size_t thread_count(int threads, size_t n)
{
	long cpus = threads > 0 ? threads : sysconf(_SC_NPROCESSORS_ONLN);
	size_t nth = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (size_t)cpus;

	return nth > n ? (n > 0 ? n : 1) : nth;
}

int cfl__parallel(size_t n, int threads, int (*fn)(void *arg, size_t i, struct cfl_err *e),
                  void *arg, struct cfl_err *e)
{
	struct pool p = {.n = n, .fn = fn, .arg = arg, .failed_at = SIZE_MAX};
	pthread_t th[MAX_THREADS];
	size_t nth = thread_count(threads, n), started = 0;

	atomic_init(&p.next, 0);
	atomic_init(&p.stop, 0);
	pthread_mutex_init(&p.lock, NULL);
	for (size_t i = 1; i < nth; i++) {
		if (pthread_create(&th[started], NULL, worker, &p) == 0)
			started++;
	}
	worker(&p); /* this thread works too; with no extra thread it does everything */
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&p.lock);
	if (p.failed_at == SIZE_MAX)
		return 0;
	if (e != NULL)
		*e = p.err;
	return p.rc;
}
