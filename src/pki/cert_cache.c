/* A few recently parsed certificates, shared by everything in the process that parses the same
 * PEM text again: a site checks the certificate of every job's signer, and a process holding
 * many sites (the simulator, the scale benchmark) checks the same one for each. Parsing a
 * certificate costs more than verifying an ECDSA signature with it (OpenSSL 3.0 decodes the
 * public key through its decoder framework). Only the parse is shared: every check made with
 * the certificate (chain, revocation, validity, signature) runs each time as before. Entries
 * are matched on the exact PEM bytes; an X509 is never changed once parsed, and OpenSSL counts
 * its references atomically, so one may be used by several threads. */
#include "pki_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { CACHE_SLOTS = 8, CACHE_PEM_MAX = 8192 };

struct slot {
	char *pem;
	size_t len;
	X509 *x509;
};

static struct {
	pthread_mutex_t lock;
	struct slot slots[CACHE_SLOTS];
	unsigned next; /* the slot the next new entry replaces */
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

X509 *cfl__pki_cert_cache_get(const char *pem, size_t len)
{
	X509 *x = NULL;

	if (len > CACHE_PEM_MAX)
		return NULL;
	pthread_mutex_lock(&cache.lock);
	for (unsigned i = 0; i < CACHE_SLOTS && x == NULL; i++) {
		struct slot *s = &cache.slots[i];

		if (s->x509 != NULL && s->len == len && memcmp(s->pem, pem, len) == 0 &&
		    X509_up_ref(s->x509))
			x = s->x509;
	}
	pthread_mutex_unlock(&cache.lock);
	return x;
}

void cfl__pki_cert_cache_put(const char *pem, size_t len, X509 *x)
{
	char *copy;
	struct slot *s;

	if (len > CACHE_PEM_MAX || (copy = malloc(len)) == NULL)
		return;
	if (!X509_up_ref(x)) {
		free(copy);
		return;
	}
	memcpy(copy, pem, len);
	pthread_mutex_lock(&cache.lock);
	s = &cache.slots[cache.next];
	cache.next = (cache.next + 1) % CACHE_SLOTS;
	free(s->pem);
	X509_free(s->x509);
	*s = (struct slot){copy, len, x};
	pthread_mutex_unlock(&cache.lock);
}
