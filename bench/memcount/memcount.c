/* bench_scale's allocation counter, preloaded into the server it measures (LD_PRELOAD): from
 * before main(), OpenSSL allocates through CRYPTO_set_mem_functions() wrappers that count the
 * live bytes it holds (malloc_usable_size), and a thread of its own writes "OPENSSL HEAP\n"
 * (OpenSSL's live bytes, then the whole malloc heap in use from mallinfo2) into the file
 * $CFL_MEMCOUNT_FILE four times a second. The thread blocks every signal, so the program's
 * signalfd still receives them. Not part of cfl: a measuring tool only. */
#define _GNU_SOURCE
#include <openssl/crypto.h>

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static atomic_llong live;
static char path[4096], tmp[4200];

static void *count_malloc(size_t n, const char *file, int line)
{
	void *p = malloc(n);

	(void)file;
	(void)line;
	if (p != NULL)
		atomic_fetch_add(&live, (long long)malloc_usable_size(p));
	return p;
}

static void count_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	if (p != NULL)
		atomic_fetch_sub(&live, (long long)malloc_usable_size(p));
	free(p);
}

static void *count_realloc(void *p, size_t n, const char *file, int line)
{
	long long before = p != NULL ? (long long)malloc_usable_size(p) : 0;
	void *q;

	if (n == 0) {
		count_free(p, file, line);
		return NULL;
	}
	q = realloc(p, n);
	if (q != NULL)
		atomic_fetch_add(&live, (long long)malloc_usable_size(q) - before);
	return q;
}

static void *writer(void *arg)
{
	struct timespec tick = {0, 250000000};

	(void)arg;
	for (;;) {
		struct mallinfo2 mi = mallinfo2();
		FILE *f = fopen(tmp, "w");

		if (f != NULL) {
			fprintf(f, "%lld %llu\n", atomic_load(&live),
			        (unsigned long long)(mi.uordblks + mi.hblkhd));
			if (fclose(f) == 0)
				(void)rename(tmp, path);
		}
		nanosleep(&tick, NULL);
	}
	return NULL;
}

__attribute__((constructor)) static void memcount_init(void)
{
	const char *out = getenv("CFL_MEMCOUNT_FILE");
	sigset_t all, old;
	pthread_t t;

	if (out == NULL || snprintf(path, sizeof(path), "%s", out) >= (int)sizeof(path))
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	/* Fails if OpenSSL has allocated already: then no figure is written at all. */
	if (!CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free))
		return;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&t, NULL, writer, NULL) == 0)
		pthread_detach(t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}
