/* The hub's index of its named peers (cfl_msg_hub_find, on every job message of a server with
 * 19,000 sites): a chained hash table by name, doubled as it fills. */
#include "cfl/msg.h"

#include "hub_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint32_t name_hash(const char *s)
{
	uint32_t x = 2166136261u; /* FNV-1a */

	for (; *s != '\0'; s++)
		x = (x ^ (uint8_t)*s) * 16777619u;
	return x;
}

/* The last peer given a name comes first among those of that name, as the newest did in the
 * list that the index replaces. */
static void index_put(struct cfl_msg_hub *h, struct cfl_peer *p)
{
	struct cfl_peer **b = &h->buckets[p->hash & (h->n_buckets - 1)];

	p->hnext = *b;
	*b = p;
	h->n_named++;
}

/* Doubles the table once it holds as many names as buckets (at least 64 buckets). 0, or
 * CFL_ENOMEM with the table as it was. */
static int index_grow(struct cfl_msg_hub *h)
{
	size_t n = h->n_buckets ? h->n_buckets * 2 : 64, old = h->n_buckets;
	struct cfl_peer **b = calloc(n, sizeof(*b)), **was = h->buckets;

	if (b == NULL)
		return CFL_ENOMEM;
	h->buckets = b;
	h->n_buckets = n;
	h->n_named = 0;
	/* In reverse bucket order, each chain reversed twice: the order within a name holds. */
	for (size_t i = 0; i < old; i++) {
		struct cfl_peer *chain = NULL, *p, *next;

		for (p = was[i]; p != NULL; p = next) {
			next = p->hnext;
			p->hnext = chain;
			chain = p;
		}
		for (p = chain; p != NULL; p = next) {
			next = p->hnext;
			index_put(h, p);
		}
	}
	free(was);
	return 0;
}

void cfl__hub_unindex(struct cfl_msg_hub *h, struct cfl_peer *p)
{
	struct cfl_peer **pp;

	if (p->name[0] == '\0' || h->n_buckets == 0)
		return;
	for (pp = &h->buckets[p->hash & (h->n_buckets - 1)]; *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == p) {
			*pp = p->hnext;
			h->n_named--;
			return;
		}
	}
}

struct cfl_peer *cfl_msg_hub_find(struct cfl_msg_hub *h, const char *name)
{
	uint32_t x = name_hash(name);

	if (h->n_buckets == 0 || name[0] == '\0')
		return NULL;
	for (struct cfl_peer *p = h->buckets[x & (h->n_buckets - 1)]; p != NULL; p = p->hnext) {
		if (p->hash == x && strcmp(p->name, name) == 0)
			return p;
	}
	return NULL;
}

int cfl_peer_set_name(struct cfl_peer *p, const char *name)
{
	struct cfl_msg_hub *h = p->hub;
	size_t len = strnlen(name, CFL_MSG_NAME_MAX - 1);
	char *copy = len > 0 ? malloc(len + 1) : NULL;

	/* Copied first: `name` may be the peer's own (freed below). */
	if (copy != NULL) {
		memcpy(copy, name, len);
		copy[len] = '\0';
	}
	cfl__hub_unindex(h, p);
	if (p->name[0] != '\0')
		free(p->name);
	p->name = "";
	if (len == 0)
		return 0;
	/* Out of memory: the peer stays unnamed (cfl_msg_hub_find does not give it). */
	if (copy == NULL || (h->n_named >= h->n_buckets && index_grow(h) != 0)) {
		free(copy);
		return CFL_ENOMEM;
	}
	p->name = copy;
	p->hash = name_hash(copy);
	index_put(h, p);
	return 0;
}
