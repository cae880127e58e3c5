/* Inside the privacy module: the parsed filters, the scopes that hold them, the noise source. */
#ifndef CFL_PRIVACY_INT_H
#define CFL_PRIVACY_INT_H

#include "cfl/privacy.h"

#include <regex.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define PRIV_MAX_SCOPES  256
#define PRIV_MAX_FILTERS 32
#define PRIV_MAX_VARS    CFL_MODEL_MAX_TENSORS /* names in one exclude_vars list */
#define PRIV_SCOPE_NAME  128                   /* bytes of a scope's name, NUL included */
#define PRIV_MAX_PATTERN 512                   /* bytes of an exclude_vars expression */
#define PRIV_PROBLEM_MAX 256

enum priv_kind { PRIV_EXCLUDE, PRIV_PERCENTILE, PRIV_SVT, PRIV_GAUSSIAN };

struct priv_exclude {
	char **names; /* a list: exact tensor names */
	size_t n;
	regex_t re; /* or an expression, when has_re */
	int has_re;
};

struct priv_percentile {
	double percentile, gamma;
};

struct priv_svt {
	double fraction, epsilon, noise_var, gamma, tau;
	int replace;
};

struct priv_gaussian {
	double clip_norm, noise_multiplier;
};

struct priv_filter {
	enum priv_kind kind;
	union {
		struct priv_exclude ex;
		struct priv_percentile pct;
		struct priv_svt svt;
		struct priv_gaussian gauss;
	} u;
};

/* Immutable once built; shared by the policy and every job that resolved it. */
struct cfl_privacy_scope {
	atomic_size_t refs;
	char name[PRIV_SCOPE_NAME];
	char *problem; /* NULL when valid */
	struct priv_filter *f;
	size_t n;
};

struct cfl_privacy {
	struct cfl_privacy_scope **scopes;
	size_t n;
	const struct cfl_privacy_scope *def; /* NULL: no default_scope */
};

/* The difference being filtered, one entry per tensor (the result's own storage). */
struct priv_tensor {
	const char *name;
	float *d;
	size_t count;
	int excluded; /* removed by ExcludeVars: zero, and left alone by later filters */
};

struct priv_work {
	struct priv_tensor *t;
	size_t n;
	size_t values; /* entries of the tensors not excluded */
};

/* Random numbers from the CSPRNG, drawn in blocks. A failure to get randomness is sticky:
 * values go on (from zeros) and the filter checks `err` when it is done. */
struct priv_rng {
	uint8_t buf[4096];
	size_t pos;
	int err;
	int has_spare;
	double spare;
};

void cfl__priv_rng_init(struct priv_rng *r);
void cfl__priv_rng_release(struct priv_rng *r);           /* wipes what was drawn */
double cfl__priv_uniform(struct priv_rng *r);             /* in (0, 1] */
uint64_t cfl__priv_below(struct priv_rng *r, uint64_t n); /* uniform in [0, n), n > 0 */
double cfl__priv_gauss(struct priv_rng *r);               /* N(0, 1) */
double cfl__priv_laplace(struct priv_rng *r, double b);   /* Laplace(0, b) */

/* Returns the k-th smallest (0-based) of a[0..n), k < n; reorders a. */
double cfl__priv_select(double *a, size_t n, size_t k);

/* The filters (filter.c, svt.c); each returns 0 or a CFL_E* code with a message in e. */
void cfl__priv_exclude(const struct priv_exclude *f, struct priv_work *w);
int cfl__priv_percentile(const struct priv_percentile *f, struct priv_work *w, struct cfl_err *e);
int cfl__priv_svt(const struct priv_svt *f, struct priv_work *w, struct priv_rng *r,
                  struct cfl_err *e);
void cfl__priv_gaussian(const struct priv_gaussian *f, struct priv_work *w, struct priv_rng *r);

/* Why an exclude_vars expression is refused before regcomp (pattern.c), or NULL. */
const char *cfl__priv_pattern_check(const char *p);

/* Frees what a parsed filter owns (policy.c). */
void cfl__priv_filter_release(struct priv_filter *f);

#endif
