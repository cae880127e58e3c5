/* A site's privacy policy (FLARE's local/privacy.json): which jobs a site accepts, by scope, and
 * the filters every result passes before it leaves the site. docs/privacy.md has the format,
 * each filter's math and what it does and does not protect.
 *
 * A site loads its policy once at start (and again on reload) on its loop thread, resolves each
 * job's scope when the job arrives, and filters each result on the worker thread that produced
 * it. A policy and its scopes never change once loaded: a scope may be used by any number of
 * threads at once, and stays valid, once resolved, until the job frees it, even if the policy
 * it came from is freed first (a reload does not pull the filters from under a running job). */
#ifndef CFL_PRIVACY_H
#define CFL_PRIVACY_H

#include "cfl/err.h"
#include "cfl/model.h"

#include <stddef.h>

#define CFL_PRIVACY_FILE      "privacy.json"
#define CFL_PRIVACY_MAX_BYTES (1u << 20)

struct cfl_privacy;       /* a loaded policy */
struct cfl_privacy_scope; /* one of its scopes: a name and its result filters */

/* Loads `local_dir`/privacy.json. Returns 0 and the policy in *out (cfl_privacy_free), or 0 and
 * *out = NULL when the file does not exist: no policy, every job is accepted and nothing is
 * filtered (FLARE's behaviour). Returns CFL_ECONFIG when the file is not a policy, with the
 * file and the reason in `e` ("cannot read 'local/privacy.json': line 3, column 5: ..." for
 * JSON syntax, the key's JSON path for the rest): the site must then refuse to start.
 * CFL_EIO, CFL_ETOOBIG (over CFL_PRIVACY_MAX_BYTES) or CFL_ENOMEM otherwise.
 *
 * A filter with an unknown name or a bad argument does not fail the load: it makes its scope
 * invalid, so that a job in that scope is refused with the reason (cfl_privacy_scope) while the
 * other scopes work; cfl_privacy_validate reports such scopes at start. Loop thread; reads the
 * disk. */
int cfl_privacy_load(const char *local_dir, struct cfl_privacy **out, struct cfl_err *e);

/* The same from `len` bytes of text (`name` names it in messages). Never returns a NULL policy
 * on success. */
int cfl_privacy_load_mem(const char *text, size_t len, const char *name, struct cfl_privacy **out,
                         struct cfl_err *e);

/* Frees the policy; scopes handed out by cfl_privacy_scope stay valid until freed themselves.
 * NULL is a no-op. */
void cfl_privacy_free(struct cfl_privacy *p);

/* 0 when every scope is valid; CFL_ECONFIG otherwise, with the first invalid scope, its reason
 * and the count of the others in `e`. A NULL policy is valid. */
int cfl_privacy_validate(const struct cfl_privacy *p, struct cfl_err *e);

/* Resolves a job's scope: `job_scope` is meta.json's "scope", NULL when the job names none.
 * Returns 0 with *out = the scope to filter with (NULL: nothing to filter, when there is no
 * policy, or the job names no scope and the policy no default_scope), which the caller owns and
 * frees with cfl_privacy_scope_free. Returns CFL_EPERM with *out = NULL and the reason in
 * `why` (made printable, truncated to why_size) when the job is refused: "scope 'x' is not
 * defined by this site", or the problem of an invalid scope. */
int cfl_privacy_scope(const struct cfl_privacy *p, const char *job_scope,
                      struct cfl_privacy_scope **out, char *why, size_t why_size);

/* Releases a scope from cfl_privacy_scope. Thread-safe; NULL is a no-op. */
void cfl_privacy_scope_free(struct cfl_privacy_scope *s);

/* The policy's scopes, in file order, for reporting: borrowed, valid while the policy is. */
size_t cfl_privacy_scope_count(const struct cfl_privacy *p);
const struct cfl_privacy_scope *cfl_privacy_scope_at(const struct cfl_privacy *p, size_t i);
/* The default scope's name, or NULL when the policy names none (or p is NULL). */
const char *cfl_privacy_default_scope(const struct cfl_privacy *p);

const char *cfl_privacy_scope_name(const struct cfl_privacy_scope *s);
/* Why the scope refuses jobs ("task_result_filters[0] 'exclude_vars': unknown filter"), or NULL
 * when it is valid. */
const char *cfl_privacy_scope_problem(const struct cfl_privacy_scope *s);
/* The number of result filters (0 for a valid scope that filters nothing). */
size_t cfl_privacy_scope_filters(const struct cfl_privacy_scope *s); /* 0 for NULL */

/* Runs the scope's task_result_filters, in order, on a result before it leaves the site.
 *
 * Every filter works on the difference between the result and `global`, the model the site
 * received for this task, whatever the job sends: `result_is_diff` 0 means `result` holds the
 * trained weights (workflow.result "weights"), 1 that it holds their difference from `global`
 * ("diff"). The filtered result is written back into `result` in the same form. `result` must
 * have exactly the tensors of `global` (names and sizes, in any order), every value finite.
 *
 * Tensors that ExcludeVars removes are not sent in the sense FedAvg in cfl understands: their
 * difference is exactly zero (their weights equal `global`'s bit for bit), and the filters after
 * it leave them alone. A NULL scope, or one without filters, leaves `result` untouched.
 *
 * Returns 0; CFL_EINVAL (models that do not match, values not finite, a filtered value that
 * overflows), CFL_EPERM (an invalid scope), CFL_ENOMEM, or CFL_ECRYPTO (no randomness), with a
 * message in `e`. On error `result` holds unspecified values and must not be sent.
 *
 * Noise comes from OpenSSL's CSPRNG and is wiped from memory afterwards. Runs on the caller's
 * thread (the site's worker); uses memory of up to 16 bytes per value of the model (SVTPrivacy;
 * PercentilePrivacy 8), none for the other filters. */
int cfl_privacy_filter_result(const struct cfl_privacy_scope *s, const struct cfl_model *global,
                              struct cfl_model *result, int result_is_diff, struct cfl_err *e);

#endif
