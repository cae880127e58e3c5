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

/* Frees what a parsed filter owns (policy.c). */
void cfl__priv_filter_release(struct priv_filter *f);

#endif
