/* Admission control for a server's listeners (contract in cfl/conn.h): counts of connections
 * and of connections not logged in, per address and in all, a token bucket of login challenges
 * per address, the descriptor limit, and refusals logged once per address per minute. */
#define _GNU_SOURCE
#include "net/conn_int.h"

#include "cfl/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define HASH_SIZE  4096  /* buckets of the address table */
#define MAX_ENTS   65536 /* addresses tracked at once (~100 bytes each) */
#define SWEEP_MS   10000 /* how often idle entries go and pending counts are logged */
#define NOFILE_MAX (1L << 24)
#define SEEN_MAX   16 /* distinct failure reasons logged at once per address and period */

enum reason { R_CONNS, R_PRE, R_PRE_ADDR, R_ADMIN_PRE, R_CHALLENGES, R_FDS, R_N };

/* Refusals of one address, or its connections that failed before login (or those of the
 * addresses the full table could not track): counted, one line per log period. */
struct refusals {
	uint64_t count;   /* since the last line */
	unsigned reasons; /* refusals: bit per enum reason, since the last line */
	uint64_t logged_ms;
	int logged; /* a line was written (logged_ms is meaningful) */
};

struct admit_ent {
	struct admit_ent *next;
	uint8_t key[16]; /* IPv4 as v4-mapped IPv6; IPv6 by its /64 */
	uint32_t pre;    /* connections from it not logged in yet */
	uint64_t seen_ms;
	uint64_t tokens; /* challenge bucket, in thousandths of a challenge */
	uint64_t tok_ms;
	struct refusals r, f; /* refusals; connections failed before login */
	char last_fail[200];
	uint32_t seen[SEEN_MAX]; /* hashes of the reasons logged in this period */
	unsigned n_seen;         /* the reason of the last of those */
};

struct cfl_admit {
	struct cfl_loop *loop;
	struct cfl_admit_limits lim;
	long nofile;
	struct admit_ent *tab[HASH_SIZE];
	long n_ents;
	long conns, pre, admin_pre;
	uint64_t refused, emfile;
	struct refusals overflow, overflow_f; /* addresses the full table could not take */
	char overflow_fail[200];
	uint64_t log_ms; /* one line per address per this */
	int spare_fd;
	uint64_t t_sweep;
};

/* --- addresses -------------------------------------------------------------------------- */

static void key_of(const struct sockaddr_storage *ss, uint8_t key[16])
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

	memset(key, 0, 16);
	if (ss->ss_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &s4->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		memcpy(key, &s6->sin6_addr, 16);
	} else if (ss->ss_family == AF_INET6) {
		memcpy(key, &s6->sin6_addr, 8); /* one host usually holds a whole /64 */
	}
}

static int key_is_v4(const uint8_t key[16])
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return memcmp(key, prefix, sizeof(prefix)) == 0;
}

static void key_text(const uint8_t key[16], char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (key_is_v4(key)) {
		(void)inet_ntop(AF_INET, key + 12, ip, sizeof(ip));
		snprintf(buf, size, "%s", ip);
	} else {
		(void)inet_ntop(AF_INET6, key, ip, sizeof(ip));
		snprintf(buf, size, "%s/64", ip);
	}
}

static unsigned key_hash(const uint8_t key[16])
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h & (HASH_SIZE - 1);
}

/* The entry of `key`, made if needed; NULL when the table is full or memory ran out. */
static struct admit_ent *lookup(struct cfl_admit *a, const uint8_t key[16])
{
	unsigned h = key_hash(key);
	struct admit_ent *x;

	for (x = a->tab[h]; x != NULL; x = x->next) {
		if (memcmp(x->key, key, 16) == 0)
			return x;
	}
	if (a->n_ents >= MAX_ENTS || (x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	memcpy(x->key, key, 16);
	x->tokens = (uint64_t)a->lim.challenges_addr_s * 1000;
	x->tok_ms = cfl_loop_now_ms(a->loop);
	x->next = a->tab[h];
	a->tab[h] = x;
	a->n_ents++;
	return x;
}

/* --- refusals and their log lines ------------------------------------------------------------ */

static void reasons_text(const struct cfl_admit *a, unsigned reasons, char *buf, size_t size)
{
	const struct cfl_admit_limits *l = &a->lim;
	size_t n = 0;

	buf[0] = '\0';
	for (int r = 0; r < R_N && n < size; r++) {
		const char *sep = n ? "; " : "";

		if (!(reasons & (1u << r)))
			continue;
		if (r == R_CONNS)
			n += (size_t)snprintf(buf + n, size - n,
			                      "%sconnection cap max_connections %ld", sep,
			                      l->max_connections);
		else if (r == R_PRE)
			n += (size_t)snprintf(
			        buf + n, size - n,
			        "%sconnections not logged in max_prelogin_connections %ld", sep,
			        l->max_prelogin);
		else if (r == R_PRE_ADDR)
			n += (size_t)snprintf(buf + n, size - n,
			                      "%sconnections not logged in from this address "
			                      "max_prelogin_per_address %ld",
			                      sep, l->max_prelogin_addr);
		else if (r == R_ADMIN_PRE)
			n += (size_t)snprintf(buf + n, size - n,
			                      "%sadmin connections not logged in admin_reserve %ld",
			                      sep, l->admin_reserve);
		else if (r == R_CHALLENGES)
			n += (size_t)snprintf(buf + n, size - n,
			                      "%slogin challenges challenges_per_address_per_s %ld",
			                      sep, l->challenges_addr_s);
		else
			n += (size_t)snprintf(buf + n, size - n,
			                      "%sdescriptors in use near the limit %ld "
			                      "descriptor_reserve %ld admin_reserve %ld",
			                      sep, a->nofile, l->fd_reserve, l->admin_reserve);
	}
}

static void who_text(const struct admit_ent *x, char *buf, size_t size)
{
	if (x == NULL)
		snprintf(buf, size, "addresses beyond the %d the table tracks", MAX_ENTS);
	else
		key_text(x->key, buf, size);
}

static void flush_refused(struct cfl_admit *a, struct refusals *r, const char *who, int challenge,
                          uint64_t now)
{
	char why[512];

	reasons_text(a, r->reasons, why, sizeof(why));
	if (!r->logged)
		CFL_WARN("admission: refused %s from %s (%s); further refusals are counted and "
		         "logged once per %.0f s",
		         challenge ? "a login challenge" : "a connection", who, why,
		         (double)a->log_ms / 1e3);
	else
		CFL_WARN("admission: %s: %" PRIu64 " refused in the last %.0f s (%s)", who,
		         r->count, (double)(now - r->logged_ms) / 1e3, why);
}

static void flush_failed(struct cfl_admit *a, struct refusals *r, const char *who, const char *last,
                         uint64_t now)
{
	if (!r->logged)
		CFL_INFO("admission: a connection from %s failed before login: %s; further ones "
		         "are counted and logged once per %.0f s",
		         who, last, (double)a->log_ms / 1e3);
	else
		CFL_INFO("admission: %s: %" PRIu64 " connections failed before login in the last "
		         "%.0f s (the last: %s)",
		         who, r->count, (double)(now - r->logged_ms) / 1e3, last);
}

/* Writes the line of `r` (x's or the overflow's) and starts counting again. `fail`: the
 * failure to name in full (else the last one kept, cut to its array). */
static void flush(struct cfl_admit *a, struct admit_ent *x, struct refusals *r, int challenge,
                  const char *fail, uint64_t now)
{
	char who[128];

	who_text(x, who, sizeof(who));
	if (fail == NULL)
		fail = x != NULL ? x->last_fail : a->overflow_fail;
	if (r == &a->overflow_f || (x != NULL && r == &x->f))
		flush_failed(a, r, who, fail, now);
	else
		flush_refused(a, r, who, challenge, now);
	r->count = 0;
	r->reasons = 0;
	r->logged = 1;
	r->logged_ms = now;
}

static int due(const struct cfl_admit *a, const struct refusals *r, uint64_t now)
{
	return !r->logged || now - r->logged_ms >= a->log_ms;
}

static void refuse(struct cfl_admit *a, struct admit_ent *x, enum reason why)
{
	struct refusals *r = x != NULL ? &x->r : &a->overflow;
	uint64_t now = cfl_loop_now_ms(a->loop);

	a->refused++;
	r->count++;
	r->reasons |= 1u << why;
	if (due(a, r, now))
		flush(a, x, r, why == R_CHALLENGES, NULL, now);
}

/* Logs the counts due, and drops entries idle for a log period with nothing pending. */
static void on_sweep(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct cfl_admit *a = arg;
	uint64_t now = cfl_loop_now_ms(loop);

	(void)id;
	for (int h = 0; h < HASH_SIZE; h++) {
		for (struct admit_ent **pp = &a->tab[h], *x; (x = *pp) != NULL;) {
			if (x->r.count > 0 && due(a, &x->r, now))
				flush(a, x, &x->r, 0, NULL, now);
			if (x->f.count > 0 && due(a, &x->f, now))
				flush(a, x, &x->f, 0, NULL, now);
			if (x->pre == 0 && x->r.count == 0 && x->f.count == 0 &&
			    now - x->seen_ms >= a->log_ms && due(a, &x->r, now) &&
			    due(a, &x->f, now)) {
				*pp = x->next;
				free(x);
				a->n_ents--;
				continue;
			}
			pp = &x->next;
		}
	}
	if (a->overflow.count > 0 && due(a, &a->overflow, now))
		flush(a, NULL, &a->overflow, 0, NULL, now);
	if (a->overflow_f.count > 0 && due(a, &a->overflow_f, now))
		flush(a, NULL, &a->overflow_f, 0, NULL, now);
	a->t_sweep =
	        cfl_loop_timer_add(loop, a->log_ms < SWEEP_MS ? a->log_ms : SWEEP_MS, on_sweep, a);
}

static uint32_t text_hash(const char *t)
{
	uint32_t h = 2166136261u;

	for (; *t != '\0'; t++)
		h = (h ^ (uint8_t)*t) * 16777619u;
	return h;
}

/* A reason not logged yet in this period is logged at once, up to SEEN_MAX of them (a
 * certificate refused at TLS names itself: operators want each); repeats are counted. */
static int new_reason(struct admit_ent *x, const char *reason, int period_start)
{
	uint32_t h = text_hash(reason);

	if (period_start)
		x->n_seen = 0;
	for (unsigned i = 0; i < x->n_seen; i++) {
		if (x->seen[i] == h)
			return 0;
	}
	if (x->n_seen >= SEEN_MAX)
		return 0;
	x->seen[x->n_seen++] = h;
	return 1;
}

void cfl__admit_failed(struct admit_slot *slot, const char *reason)
{
	struct cfl_admit *a = slot->a;
	struct admit_ent *x = slot->ent;
	struct refusals *r;
	uint64_t now;
	char who[128];

	if (a == NULL || !slot->pre)
		return;
	r = x != NULL ? &x->f : &a->overflow_f;
	snprintf(x != NULL ? x->last_fail : a->overflow_fail, sizeof(a->overflow_fail), "%s",
	         reason);
	now = cfl_loop_now_ms(a->loop);
	if (due(a, r, now)) {
		if (x != NULL)
			(void)new_reason(x, reason, 1);
		r->count++;
		flush(a, x, r, 0, reason, now);
	} else if (x != NULL && new_reason(x, reason, 0)) {
		who_text(x, who, sizeof(who));
		CFL_INFO("admission: a connection from %s failed before login: %s", who, reason);
	} else {
		r->count++;
	}
}

/* --- decisions ------------------------------------------------------------------------------- */

/* Which limit, if any, refuses one more connection (descriptor `fd`) on this listener. */
static int over_limit(const struct cfl_admit *a, const struct admit_ent *x, int fd, int admin,
                      enum reason *why)
{
	const struct cfl_admit_limits *l = &a->lim;
	long extra = admin ? l->admin_reserve : 0;

	/* Descriptors go lowest first: `fd` means every one below it is in use. */
	if (fd >= a->nofile - l->fd_reserve - l->admin_reserve + extra)
		*why = R_FDS;
	else if (a->conns >= l->max_connections + extra)
		*why = R_CONNS;
	else if (x != NULL && (long)x->pre >= l->max_prelogin_addr)
		*why = R_PRE_ADDR;
	else if (admin && a->admin_pre >= l->admin_reserve)
		*why = R_ADMIN_PRE;
	else if (!admin && a->pre >= l->max_prelogin)
		*why = R_PRE;
	else
		return 0;
	return 1;
}

int cfl__admit_accept(struct cfl_admit *a, const struct sockaddr_storage *ss, int fd, int admin,
                      struct admit_slot *slot)
{
	uint8_t key[16];
	struct admit_ent *x;
	enum reason why;

	key_of(ss, key);
	x = lookup(a, key);
	if (x != NULL)
		x->seen_ms = cfl_loop_now_ms(a->loop);
	if (over_limit(a, x, fd, admin, &why)) {
		refuse(a, x, why);
		return CFL_EAGAIN;
	}
	memset(slot, 0, sizeof(*slot));
	slot->a = a;
	slot->ent = x;
	slot->counted = slot->pre = 1;
	slot->admin = admin != 0;
	a->conns++;
	if (admin)
		a->admin_pre++;
	else
		a->pre++;
	if (x != NULL)
		x->pre++;
	return 0;
}

void cfl__admit_logged_in(struct admit_slot *slot)
{
	if (slot->a == NULL || !slot->pre)
		return;
	slot->pre = 0;
	if (slot->ent != NULL)
		slot->ent->pre--;
	slot->ent = NULL; /* the entry may go once nothing of it is pending */
	if (slot->admin)
		slot->a->admin_pre--;
	else
		slot->a->pre--;
}

void cfl__admit_release(struct admit_slot *slot)
{
	cfl__admit_logged_in(slot);
	if (slot->a != NULL && slot->counted)
		slot->a->conns--;
	memset(slot, 0, sizeof(*slot));
}

int cfl__admit_emfile(struct cfl_admit *a, int lfd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	uint8_t key[16];
	int fd, err;

	if (a->spare_fd < 0)
		return CFL_EAGAIN;
	close(a->spare_fd);
	memset(&ss, 0, sizeof(ss));
	fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
	err = errno;
	if (fd >= 0)
		close(fd);
	a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err == EAGAIN || err == EWOULDBLOCK ? 1 : CFL_EAGAIN;
	a->emfile++;
	key_of(&ss, key);
	refuse(a, lookup(a, key), R_FDS);
	return a->spare_fd >= 0 ? 0 : CFL_EAGAIN;
}

int cfl_conn_admit_challenge(struct cfl_conn *c)
{
	struct admit_ent *x = c != NULL ? c->adm.ent : NULL;
	struct cfl_admit *a = c != NULL ? c->adm.a : NULL;
	uint64_t now, cap;

	if (a == NULL || x == NULL)
		return 1;
	now = cfl_loop_now_ms(a->loop);
	cap = (uint64_t)a->lim.challenges_addr_s * 1000;
	x->tokens += (now - x->tok_ms) * (uint64_t)a->lim.challenges_addr_s;
	if (x->tokens > cap)
		x->tokens = cap;
	x->tok_ms = now;
	x->seen_ms = now;
	if (x->tokens >= 1000) {
		x->tokens -= 1000;
		return 1;
	}
	refuse(a, x, R_CHALLENGES);
	return 0;
}

/* --- setup ------------------------------------------------------------------------------------ */

void cfl_admit_defaults(struct cfl_admit_limits *l)
{
	memset(l, 0, sizeof(*l));
	l->max_prelogin = CFL_ADMIT_MAX_PRELOGIN;
	l->max_prelogin_addr = CFL_ADMIT_MAX_PRELOGIN_ADDR;
	l->challenges_addr_s = CFL_ADMIT_CHALLENGES_ADDR_S;
	l->admin_reserve = CFL_ADMIT_ADMIN_RESERVE;
	l->fd_reserve = CFL_ADMIT_FD_RESERVE;
}

static long nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1024;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)NOFILE_MAX)
		return NOFILE_MAX;
	return (long)rl.rlim_cur;
}

/* CFL_ADMIT_LOG_MS, or CFL_ADMIT_LOG_S from the environment (tests: 0.1..3600 s). */
static uint64_t log_period_ms(void)
{
	const char *v = getenv("CFL_ADMIT_LOG_S");
	char *end = NULL;
	double s = v != NULL ? strtod(v, &end) : 0;

	if (v == NULL || end == v || *end != '\0' || !(s >= 0.1 && s <= 3600))
		return CFL_ADMIT_LOG_MS;
	return (uint64_t)(s * 1000);
}

/* Fills zero fields with defaults and fits max_connections under the descriptor limit. */
static int resolve(struct cfl_admit *a, const struct cfl_admit_limits *in, struct cfl_err *e)
{
	struct cfl_admit_limits d, *l = &a->lim;
	long room;

	cfl_admit_defaults(&d);
	*l = *in;
	if (l->max_connections < 0 || l->max_prelogin < 0 || l->max_prelogin_addr < 0 ||
	    l->challenges_addr_s < 0 || l->admin_reserve < 0 || l->fd_reserve < 0)
		return cfl_err_set(e, CFL_EINVAL, "admission limits must not be negative");
	l->max_prelogin = l->max_prelogin ? l->max_prelogin : d.max_prelogin;
	l->max_prelogin_addr = l->max_prelogin_addr ? l->max_prelogin_addr : d.max_prelogin_addr;
	l->challenges_addr_s = l->challenges_addr_s ? l->challenges_addr_s : d.challenges_addr_s;
	l->admin_reserve = l->admin_reserve ? l->admin_reserve : d.admin_reserve;
	l->fd_reserve = l->fd_reserve ? l->fd_reserve : d.fd_reserve;
	a->nofile = nofile_limit();
	room = a->nofile - l->fd_reserve - l->admin_reserve;
	if (room < 1)
		room = 1;
	if (l->max_connections > room)
		CFL_WARN("admission: max_connections %ld is more than the descriptor limit %ld "
		         "allows (minus descriptor_reserve %ld and admin_reserve %ld): %ld",
		         l->max_connections, a->nofile, l->fd_reserve, l->admin_reserve, room);
	if (l->max_connections == 0 || l->max_connections > room)
		l->max_connections = room;
	return 0;
}

int cfl_admit_new(struct cfl_loop *loop, const struct cfl_admit_limits *limits,
                  struct cfl_admit **out, struct cfl_err *e)
{
	struct cfl_admit *a = calloc(1, sizeof(*a));
	int rc;

	*out = NULL;
	if (a == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	a->loop = loop;
	if ((rc = resolve(a, limits, e)) != 0) {
		free(a);
		return rc;
	}
	a->log_ms = log_period_ms();
	a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	a->t_sweep =
	        cfl_loop_timer_add(loop, a->log_ms < SWEEP_MS ? a->log_ms : SWEEP_MS, on_sweep, a);
	*out = a;
	return 0;
}

void cfl_admit_free(struct cfl_admit *a)
{
	if (a == NULL)
		return;
	cfl_loop_timer_cancel(a->loop, a->t_sweep);
	for (int h = 0; h < HASH_SIZE; h++) {
		for (struct admit_ent *x = a->tab[h], *next; x != NULL; x = next) {
			next = x->next;
			free(x);
		}
	}
	if (a->spare_fd >= 0)
		close(a->spare_fd);
	free(a);
}

void cfl_admit_limits_get(const struct cfl_admit *a, struct cfl_admit_limits *out)
{
	*out = a->lim;
}

void cfl_admit_stats_get(const struct cfl_admit *a, struct cfl_admit_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->connections = a->conns;
	out->prelogin = a->pre;
	out->admin_prelogin = a->admin_pre;
	out->refused = a->refused;
	out->emfile = a->emfile;
}
