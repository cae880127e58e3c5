/* Key generation for a whole project on every core: RSA-2048 key generation dominates
 * provisioning time (hundreds of ms a key), and keys are independent. */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_THREADS 16

struct pool {
	enum cfl_key_type type;
	size_t n;
	struct cfl_pki_key **keys;
	atomic_size_t next;
	atomic_int failed;
	struct cfl_err err; /* the first failure */
	pthread_mutex_t lock;
};

static void *worker(void *arg)
{
	struct pool *p = arg;
	size_t i;

	while (!atomic_load(&p->failed) && (i = atomic_fetch_add(&p->next, 1)) < p->n) {
		struct cfl_err e = {0};

		if (cfl_pki_key_generate(p->type, &p->keys[i], &e) != 0) {
			pthread_mutex_lock(&p->lock);
			if (!atomic_exchange(&p->failed, 1))
				p->err = e;
			pthread_mutex_unlock(&p->lock);
		}
	}
	return NULL;
}

int cfl__keygen_many(enum cfl_key_type type, size_t n, struct cfl_pki_key **keys, struct cfl_err *e)
{
	struct pool p = {.type = type, .n = n, .keys = keys};
	pthread_t th[MAX_THREADS];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t nth = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (size_t)cpus, started = 0;

	atomic_init(&p.next, 0);
	atomic_init(&p.failed, 0);
	pthread_mutex_init(&p.lock, NULL);
	if (nth > n)
		nth = n;
	for (size_t i = 1; i < nth; i++) {
		if (pthread_create(&th[started], NULL, worker, &p) == 0)
			started++;
	}
	worker(&p); /* this thread works too; with no extra thread it does everything */
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&p.lock);
	if (atomic_load(&p.failed)) {
		for (size_t i = 0; i < n; i++) {
			cfl_pki_key_free(keys[i]);
			keys[i] = NULL;
		}
		if (e != NULL)
			*e = p.err;
		return p.err.code != 0 ? p.err.code : CFL_ECRYPTO;
	}
	return 0;
}
