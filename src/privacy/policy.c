/* local/privacy.json: loading, checking every filter's arguments, resolving a job's scope.
 *
 * Two kinds of error, on purpose. What makes the file unusable as a whole (JSON syntax, scopes
 * without a name, a default_scope that does not exist) fails the load, and the site does not
 * start. What is wrong inside one scope (an unknown filter, a bad argument) makes only that
 * scope refuse its jobs, with the reason: FLARE builds a scope's filters when a job needs them,
 * so a typo in one scope does not stop a site's other work, and cfl keeps that, failing closed
 * for the scope in question. */
#include "privacy/privacy_int.h"

#include <ctype.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fs.h"

/* --- a scope's problems --------------------------------------------------------------------- */

/* Out of memory while recording a problem still refuses the scope's jobs: this stands in. */
static char oom_problem[] = "out of memory while loading";

/* Records the first problem of a scope (the one a person fixes first); returns -1. */
static int problem(struct cfl_privacy_scope *s, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static int problem(struct cfl_privacy_scope *s, const char *fmt, ...)
{
	char buf[PRIV_PROBLEM_MAX];
	va_list ap;

	if (s->problem != NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	s->problem = strdup(buf);
	if (s->problem == NULL)
		s->problem = oom_problem;
	return -1;
}

/* --- filter arguments ---------------------------------------------------------------------- */

/* A number argument: its default (NAN: required), its range, where it goes. */
struct num_arg {
	const char *key;
	double def;
	double lo, hi;
	int lo_open;       /* lo itself not allowed */
	const char *range; /* for the message */
	size_t off;
};

static const struct num_arg percentile_args[] = {
        {"percentile", 10, 0, 100, 0, "a number from 0 to 100",
         offsetof(struct priv_percentile, percentile)},
        {"gamma", 0.01, 0, HUGE_VAL, 1, "a number > 0", offsetof(struct priv_percentile, gamma)},
};

static const struct num_arg svt_args[] = {
        {"fraction", 0.1, 0, 1, 0, "a number from 0 to 1", offsetof(struct priv_svt, fraction)},
        {"epsilon", 0.1, 0, HUGE_VAL, 1, "a number > 0", offsetof(struct priv_svt, epsilon)},
        {"noise_var", 0.1, 0, HUGE_VAL, 1, "a number > 0", offsetof(struct priv_svt, noise_var)},
        {"gamma", 1e-5, 0, HUGE_VAL, 1, "a number > 0", offsetof(struct priv_svt, gamma)},
        {"tau", 1e-6, 0, HUGE_VAL, 0, "a number >= 0", offsetof(struct priv_svt, tau)},
};

static const struct num_arg gaussian_args[] = {
        {"clip_norm", NAN, 0, HUGE_VAL, 1, "a number > 0",
         offsetof(struct priv_gaussian, clip_norm)},
        {"noise_multiplier", NAN, 0, HUGE_VAL, 0, "a number >= 0",
         offsetof(struct priv_gaussian, noise_multiplier)},
};

/* The filter being read: its scope (which takes the problem), its place and its name. */
struct where {
	struct cfl_privacy_scope *s;
	size_t index;
	const char *name;
};

/* A problem of the filter, prefixed with where it is: "task_result_filters[1] 'SVTPrivacy': ". */
static int bad(const struct where *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(const struct where *w, const char *fmt, ...)
{
	char buf[PRIV_PROBLEM_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return problem(w->s, "task_result_filters[%zu] '%s': %s", w->index, w->name, buf);
}

/* A filter's arguments: the numbers, and a handler for the others (it returns 1 when it took
 * the key, 0 when it does not know it, -1 when the value is bad). */
struct arg_table {
	const struct num_arg *num;
	size_t n;
	int (*other)(const struct where *w, const char *key, json_t *v, void *out);
};

static const struct num_arg *find_num(const struct arg_table *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->num[i].key, key) == 0)
			return &t->num[i];
	}
	return NULL;
}

/* FLARE's DXO filters take data_kinds (which results to filter). cfl filters weights and
 * differences alike, always, so a list naming only one kind would filter less in FLARE than
 * here: never less, which is the safe side. It is checked, not used. */
static int data_kinds(const struct where *w, json_t *v)
{
	size_t i;
	json_t *k;

	json_array_foreach (v, i, k) {
		const char *s = json_string_value(k);

		if (s == NULL || (strcmp(s, "WEIGHTS") != 0 && strcmp(s, "WEIGHT_DIFF") != 0))
			break;
	}
	if (!json_is_array(v) || i < json_array_size(v))
		return bad(w, "'data_kinds' must be a list of \"WEIGHTS\" and \"WEIGHT_DIFF\"");
	return 0;
}

static double *num_at(void *out, const struct num_arg *a)
{
	return (double *)((char *)out + a->off);
}

/* Fills the numbers of `out` from `args`, with their defaults; every other key must be
 * data_kinds or taken by the table's handler. */
static int read_args(const struct where *w, json_t *args, const struct arg_table *t, void *out)
{
	const char *key;
	json_t *v;

	for (size_t i = 0; i < t->n; i++)
		*num_at(out, &t->num[i]) = t->num[i].def;
	json_object_foreach (args, key, v) {
		const struct num_arg *a = find_num(t, key);
		double x = json_number_value(v);
		int rc;

		if (a != NULL) {
			if (!json_is_number(v) || !isfinite(x) || x < a->lo || x > a->hi ||
			    (a->lo_open && x == a->lo))
				return bad(w, "'%s' must be %s", key, a->range);
			*num_at(out, a) = x;
		} else if (strcmp(key, "data_kinds") == 0) {
			if (data_kinds(w, v) != 0)
				return -1;
		} else if ((rc = t->other != NULL ? t->other(w, key, v, out) : 0) <= 0) {
			return rc < 0 ? -1 : bad(w, "unknown argument '%s'", key);
		}
	}
	for (size_t i = 0; i < t->n; i++) {
		if (isnan(*num_at(out, &t->num[i])))
			return bad(w, "'%s' is required (%s)", t->num[i].key, t->num[i].range);
	}
	return 0;
}

static int svt_other(const struct where *w, const char *key, json_t *v, void *out)
{
	struct priv_svt *f = out;

	if (strcmp(key, "replace") != 0)
		return 0;
	if (!json_is_boolean(v))
		return bad(w, "'replace' must be true or false");
	f->replace = json_is_true(v);
	return 1;
}

#define TABLE(args, other)                                  \
	{                                                   \
		args, sizeof(args) / sizeof(args[0]), other \
	}

static int parse_percentile(const struct where *w, json_t *args, struct priv_filter *f)
{
	static const struct arg_table t = TABLE(percentile_args, NULL);

	f->kind = PRIV_PERCENTILE;
	return read_args(w, args, &t, &f->u.pct);
}

static int parse_svt(const struct where *w, json_t *args, struct priv_filter *f)
{
	static const struct arg_table t = TABLE(svt_args, svt_other);

	f->kind = PRIV_SVT;
	f->u.svt.replace = 1; /* FLARE samples with replacement unless told otherwise */
	return read_args(w, args, &t, &f->u.svt);
}

static int parse_gaussian(const struct where *w, json_t *args, struct priv_filter *f)
{
	static const struct arg_table t = TABLE(gaussian_args, NULL);

	f->kind = PRIV_GAUSSIAN;
	return read_args(w, args, &t, &f->u.gauss);
}

static int exclude_pattern(const struct where *w, const char *p, struct priv_exclude *ex)
{
	const char *trouble = cfl__priv_pattern_check(p);
	char msg[128];
	int rc;

	if (p[0] == '\0' || strlen(p) >= PRIV_MAX_PATTERN)
		return bad(w, "the 'exclude_vars' expression must be 1 to %d bytes",
		           PRIV_MAX_PATTERN - 1);
	if (trouble != NULL)
		return bad(w, "'exclude_vars' expression: %s", trouble);
	rc = regcomp(&ex->re, p, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		regerror(rc, NULL, msg, sizeof(msg));
		return bad(w, "'exclude_vars' is not a POSIX extended regular expression: %s", msg);
	}
	ex->has_re = 1;
	return 0;
}

static int exclude_list(const struct where *w, json_t *v, struct priv_exclude *ex)
{
	size_t i, n = json_array_size(v);
	json_t *k;

	if (n > PRIV_MAX_VARS)
		return bad(w, "'exclude_vars' lists more than %d names", PRIV_MAX_VARS);
	ex->names = calloc(n > 0 ? n : 1, sizeof(*ex->names));
	if (ex->names == NULL)
		return problem(w->s, "out of memory");
	json_array_foreach (v, i, k) {
		const char *name = json_string_value(k);

		if (name == NULL || name[0] == '\0')
			return bad(w, "'exclude_vars[%zu]' must be a tensor name", i);
		ex->names[i] = strdup(name);
		if (ex->names[i] == NULL)
			return problem(w->s, "out of memory");
		ex->n = i + 1;
	}
	return 0;
}

/* FLARE skips the filter when exclude_vars is missing or empty (it excludes nothing). A site
 * that wrote ExcludeVars meant to exclude something: here the argument is required. */
static int exclude_other(const struct where *w, const char *key, json_t *v, void *out)
{
	struct priv_exclude *ex = out;

	if (strcmp(key, "exclude_vars") != 0)
		return 0;
	if (json_is_string(v))
		return exclude_pattern(w, json_string_value(v), ex) == 0 ? 1 : -1;
	if (json_is_array(v))
		return exclude_list(w, v, ex) == 0 ? 1 : -1;
	return bad(w, "'exclude_vars' must be a list of tensor names or a regular expression");
}

static int parse_exclude(const struct where *w, json_t *args, struct priv_filter *f)
{
	static const struct arg_table t = {NULL, 0, exclude_other};

	f->kind = PRIV_EXCLUDE;
	if (read_args(w, args, &t, &f->u.ex) != 0)
		return -1;
	if (f->u.ex.names == NULL && !f->u.ex.has_re)
		return bad(w,
		           "'exclude_vars' must be a list of tensor names or a regular expression");
	return 0;
}

void cfl__priv_filter_release(struct priv_filter *f)
{
	if (f->kind != PRIV_EXCLUDE)
		return;
	for (size_t i = 0; i < f->u.ex.n; i++)
		free(f->u.ex.names[i]);
	free(f->u.ex.names);
	if (f->u.ex.has_re)
		regfree(&f->u.ex.re);
}

/* --- filters and scopes -------------------------------------------------------------------- */

typedef int (*filter_parser)(const struct where *, json_t *, struct priv_filter *);

static const struct {
	const char *name;
	filter_parser parse;
} filter_table[] = {
        {"ExcludeVars", parse_exclude},
        {"PercentilePrivacy", parse_percentile},
        {"SVTPrivacy", parse_svt},
        {"GaussianPrivacy", parse_gaussian},
};

/* FLARE names a filter by class ("name") or by class path ("path"); the last component of
 * either is the class. */
static filter_parser find_filter(const char *name)
{
	const char *dot = strrchr(name, '.');
	const char *cls = dot != NULL ? dot + 1 : name;

	for (size_t i = 0; i < sizeof(filter_table) / sizeof(filter_table[0]); i++) {
		if (strcmp(filter_table[i].name, cls) == 0)
			return filter_table[i].parse;
	}
	return NULL;
}

static int parse_filter(struct cfl_privacy_scope *s, size_t index, json_t *fj,
                        struct priv_filter *f)
{
	json_t *name = json_object_get(fj, "name"), *path = json_object_get(fj, "path");
	json_t *args = json_object_get(fj, "args"), *v, *empty = NULL;
	struct where w = {s, index, "?"};
	filter_parser parse;
	const char *key;
	int rc;

	if (!json_is_object(fj))
		return problem(s, "task_result_filters[%zu] must be an object", index);
	if ((name == NULL) == (path == NULL) || !json_is_string(name != NULL ? name : path))
		return problem(s, "task_result_filters[%zu] needs a 'name' or a 'path' (a string)",
		               index);
	w.name = json_string_value(name != NULL ? name : path);
	json_object_foreach (fj, key, v) {
		if (strcmp(key, "name") != 0 && strcmp(key, "path") != 0 &&
		    strcmp(key, "args") != 0)
			return bad(&w, "unknown key '%s'", key);
	}
	if (args != NULL && !json_is_object(args))
		return bad(&w, "'args' must be an object");
	parse = find_filter(w.name);
	if (parse == NULL)
		return bad(&w,
		           "unknown filter (cfl has ExcludeVars, PercentilePrivacy, SVTPrivacy, "
		           "GaussianPrivacy)");
	if (args == NULL && (args = empty = json_object()) == NULL)
		return problem(s, "out of memory");
	rc = parse(&w, args, f);
	json_decref(empty);
	return rc;
}

static void scope_release(struct cfl_privacy_scope *s)
{
	for (size_t i = 0; i < s->n; i++)
		cfl__priv_filter_release(&s->f[i]);
	free(s->f);
	if (s->problem != oom_problem)
		free(s->problem);
	free(s);
}

void cfl_privacy_scope_free(struct cfl_privacy_scope *s)
{
	if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
		scope_release(s);
}

static int parse_filters(struct cfl_privacy_scope *s, json_t *list)
{
	size_t i, n = json_array_size(list);
	json_t *fj;

	if (list == NULL)
		return 0;
	if (!json_is_array(list))
		return problem(s, "'task_result_filters' must be a list");
	if (n > PRIV_MAX_FILTERS)
		return problem(s, "more than %d task_result_filters", PRIV_MAX_FILTERS);
	s->f = calloc(n > 0 ? n : 1, sizeof(*s->f));
	if (s->f == NULL)
		return problem(s, "out of memory");
	json_array_foreach (list, i, fj) {
		/* Counted before parsing: a half-parsed filter is released with the rest. */
		s->n = i + 1;
		s->f[i].kind = PRIV_PERCENTILE;
		if (parse_filter(s, i, fj, &s->f[i]) != 0)
			return -1;
	}
	return 0;
}

/* The scope's content: every problem here refuses the scope, not the file. */
static void parse_scope_body(struct cfl_privacy_scope *s, json_t *sj)
{
	json_t *data = json_object_get(sj, "task_data_filters"), *v;
	json_t *props = json_object_get(sj, "properties");
	const char *key;

	json_object_foreach (sj, key, v) {
		if (strcmp(key, "name") != 0 && strcmp(key, "properties") != 0 &&
		    strcmp(key, "task_result_filters") != 0 &&
		    strcmp(key, "task_data_filters") != 0) {
			problem(s, "unknown key '%s'", key);
			return;
		}
	}
	if (props != NULL && !json_is_object(props)) {
		problem(s, "'properties' must be an object");
		return;
	}
	/* cfl filters what leaves a site, not what reaches it: a scope that asks for data
	 * filters would not get them, so its jobs are refused rather than run without. */
	if (data != NULL && (!json_is_array(data) || json_array_size(data) > 0)) {
		problem(s, "task_data_filters are not supported (cfl filters results only)");
		return;
	}
	parse_filters(s, json_object_get(sj, "task_result_filters"));
}

static int name_ok(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len >= PRIV_SCOPE_NAME)
		return 0;
	for (; *n != '\0'; n++) {
		if ((unsigned char)*n < 0x20 || *n == 0x7f)
			return 0;
	}
	return 1;
}

static int parse_scope(struct cfl_privacy *p, size_t index, json_t *sj, const char *file,
                       struct cfl_err *e)
{
	const char *name = json_string_value(json_object_get(sj, "name"));
	struct cfl_privacy_scope *s;

	if (!json_is_object(sj))
		return cfl_err_set(e, CFL_ECONFIG, "'%s': scopes[%zu] must be an object", file,
		                   index);
	if (name == NULL || !name_ok(name))
		return cfl_err_set(e, CFL_ECONFIG,
		                   "'%s': scopes[%zu] needs a 'name' of 1 to %d printable bytes",
		                   file, index, PRIV_SCOPE_NAME - 1);
	for (size_t i = 0; i < p->n; i++) {
		if (strcmp(p->scopes[i]->name, name) == 0)
			return cfl_err_set(e, CFL_ECONFIG, "'%s': scope '%s' is defined twice",
			                   file, name);
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "'%s': out of memory", file);
	atomic_init(&s->refs, 1);
	memcpy(s->name, name, strlen(name) + 1);
	p->scopes[p->n++] = s;
	parse_scope_body(s, sj);
	return 0;
}

static int parse_policy(struct cfl_privacy *p, json_t *root, const char *file, struct cfl_err *e)
{
	json_t *scopes = json_object_get(root, "scopes"),
	       *def = json_object_get(root, "default_scope");
	json_t *v;
	const char *key;
	size_t i;
	int rc;

	if (!json_is_object(root))
		return cfl_err_set(e, CFL_ECONFIG, "'%s': not a JSON object", file);
	/* format_version: cfl's own samples wrote one; FLARE's files have none. */
	json_object_foreach (root, key, v) {
		if (strcmp(key, "scopes") != 0 && strcmp(key, "default_scope") != 0 &&
		    strcmp(key, "format_version") != 0)
			return cfl_err_set(e, CFL_ECONFIG, "'%s': unknown key '%s'", file, key);
	}
	if (!json_is_array(scopes))
		return cfl_err_set(e, CFL_ECONFIG, "'%s': 'scopes' must be a list of scopes", file);
	if (json_array_size(scopes) > PRIV_MAX_SCOPES)
		return cfl_err_set(e, CFL_ECONFIG, "'%s': more than %d scopes", file,
		                   PRIV_MAX_SCOPES);
	p->scopes = calloc(json_array_size(scopes) + 1, sizeof(*p->scopes));
	if (p->scopes == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "'%s': out of memory", file);
	json_array_foreach (scopes, i, v) {
		if ((rc = parse_scope(p, i, v, file, e)) != 0)
			return rc;
	}
	if (def == NULL)
		return 0;
	if (!json_is_string(def))
		return cfl_err_set(e, CFL_ECONFIG, "'%s': 'default_scope' must be a string", file);
	for (i = 0; i < p->n; i++) {
		if (strcmp(p->scopes[i]->name, json_string_value(def)) == 0)
			p->def = p->scopes[i];
	}
	if (p->def == NULL)
		return cfl_err_set(e, CFL_ECONFIG,
		                   "'%s': default_scope '%.*s' is not a defined scope", file,
		                   PRIV_SCOPE_NAME, json_string_value(def));
	return 0;
}

int cfl_privacy_load_mem(const char *text, size_t len, const char *name, struct cfl_privacy **out,
                         struct cfl_err *e)
{
	struct cfl_privacy *p = NULL;
	json_error_t je;
	json_t *root;
	int rc;

	*out = NULL;
	if (text == NULL && len > 0)
		return cfl_err_set(e, CFL_EINVAL, "'%s': no data", name);
	if (len > CFL_PRIVACY_MAX_BYTES)
		return cfl_err_set(e, CFL_ETOOBIG, "'%s': larger than %u bytes", name,
		                   CFL_PRIVACY_MAX_BYTES);
	root = json_loadb(text != NULL ? text : "", len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return cfl_err_set(e, CFL_ECONFIG, "cannot read '%s': line %d, column %d: %s", name,
		                   je.line, je.column, je.text);
	p = calloc(1, sizeof(*p));
	rc = p == NULL ? cfl_err_set(e, CFL_ENOMEM, "'%s': out of memory", name)
	               : parse_policy(p, root, name, e);
	json_decref(root);
	if (rc != 0) {
		cfl_privacy_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

int cfl_privacy_load(const char *local_dir, struct cfl_privacy **out, struct cfl_err *e)
{
	char path[PATH_MAX];
	char *buf = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	if (cfl__path_join(path, sizeof(path), local_dir, CFL_PRIVACY_FILE) != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", local_dir);
	rc = cfl__fs_read_file(path, CFL_PRIVACY_MAX_BYTES, &buf, &len, e);
	if (rc == CFL_ENOENT) {
		cfl_err_clear(e);
		return 0;
	}
	if (rc != 0)
		return rc;
	rc = cfl_privacy_load_mem(buf, len, path, out, e);
	free(buf);
	return rc;
}

void cfl_privacy_free(struct cfl_privacy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		cfl_privacy_scope_free(p->scopes[i]);
	free(p->scopes);
	free(p);
}

/* --- questions ----------------------------------------------------------------------------- */

int cfl_privacy_validate(const struct cfl_privacy *p, struct cfl_err *e)
{
	const struct cfl_privacy_scope *first = NULL;
	size_t bad = 0;

	for (size_t i = 0; p != NULL && i < p->n; i++) {
		if (p->scopes[i]->problem == NULL)
			continue;
		if (first == NULL)
			first = p->scopes[i];
		bad++;
	}
	if (first == NULL)
		return 0;
	if (bad == 1)
		return cfl_err_set(e, CFL_ECONFIG, "scope '%s' refuses every job: %s", first->name,
		                   first->problem);
	return cfl_err_set(e, CFL_ECONFIG, "scope '%s' refuses every job: %s (and %zu more scopes)",
	                   first->name, first->problem, bad - 1);
}

/* The job's words go into a message a person reads: printable bytes only, and not too many. */
static void printable(char *dst, size_t size, const char *src)
{
	size_t i;

	for (i = 0; i + 1 < size && i < 64 && src[i] != '\0'; i++)
		dst[i] = isprint((unsigned char)src[i]) ? src[i] : '?';
	dst[i] = '\0';
	if (src[i] != '\0' && i >= 3 && i + 1 < size)
		memcpy(dst + i - 3, "...", 3);
}

int cfl_privacy_scope(const struct cfl_privacy *p, const char *job_scope,
                      struct cfl_privacy_scope **out, char *why, size_t why_size)
{
	struct cfl_privacy_scope *s = NULL;
	char shown[80];

	*out = NULL;
	if (why_size > 0)
		why[0] = '\0';
	if (p == NULL)
		return 0;
	if (job_scope == NULL) {
		s = (struct cfl_privacy_scope *)p->def;
	} else {
		for (size_t i = 0; i < p->n && s == NULL; i++) {
			if (strcmp(p->scopes[i]->name, job_scope) == 0)
				s = p->scopes[i];
		}
		if (s == NULL) {
			printable(shown, sizeof(shown), job_scope);
			if (why_size > 0)
				snprintf(why, why_size, "scope '%s' is not defined by this site",
				         shown);
			return CFL_EPERM;
		}
	}
	if (s == NULL)
		return 0;
	if (s->problem != NULL) {
		if (why_size > 0)
			snprintf(why, why_size, "scope '%s' of this site is invalid: %s", s->name,
			         s->problem);
		return CFL_EPERM;
	}
	atomic_fetch_add(&s->refs, 1);
	*out = s;
	return 0;
}

size_t cfl_privacy_scope_count(const struct cfl_privacy *p)
{
	return p != NULL ? p->n : 0;
}

const struct cfl_privacy_scope *cfl_privacy_scope_at(const struct cfl_privacy *p, size_t i)
{
	return p != NULL && i < p->n ? p->scopes[i] : NULL;
}

const char *cfl_privacy_default_scope(const struct cfl_privacy *p)
{
	return p != NULL && p->def != NULL ? p->def->name : NULL;
}

const char *cfl_privacy_scope_name(const struct cfl_privacy_scope *s)
{
	return s->name;
}

const char *cfl_privacy_scope_problem(const struct cfl_privacy_scope *s)
{
	return s->problem;
}

size_t cfl_privacy_scope_filters(const struct cfl_privacy_scope *s)
{
	return s != NULL ? s->n : 0;
}
