/* `include:` in project files: FLARE composes project.yml from several files this way.
 *
 * A key `include: FILE` or `include: [FILE, ...]` in any mapping is replaced by the mappings
 * of those files, in place, after their own includes were replaced in turn. This works on the
 * loader's tree (project_yaml.c), before any key is read, so the rest of the loader sees one
 * tree whose nodes each remember the file they came from (their messages name it).
 *
 * What may be included: a path relative to the including file's folder (or absolute) that,
 * after realpath (every symbolic link followed), is a regular file inside the project file's
 * folder. Bounds: CFL__INCLUDE_MAX_DEPTH levels, CFL__INCLUDE_MAX_FILES files and
 * CFL__INCLUDE_MAX_BYTES bytes in all; a file that includes itself, directly or not, is a
 * cycle. A key that the merge would give twice in one mapping is refused (FLARE lets the later
 * one win, in document order; cfl does not guess): docs/provisioning.md. */
#define _DEFAULT_SOURCE /* realpath */
#include "provision/project_int.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/fs.h"

/* The file whose tree is being expanded. */
struct src {
	const char *name; /* for messages and for the names of what it includes */
	const char *dir;  /* its folder (real), against which its includes resolve */
};

/* Sets the error at node `at` of the including file; returns `code`. */
static int fail(struct cfl__yinc *inc, const struct cfl__ynode *at, int code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int fail(struct cfl__yinc *inc, const struct cfl__ynode *at, int code, const char *fmt, ...)
{
	char rule[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rule, sizeof(rule), fmt, ap);
	va_end(ap);
	return cfl_err_set(inc->e, code, "%s:%d:%d: %s", at->file, at->line, at->col, rule);
}

/* The same for a rule about the include value `at`: "include 'FILE': RULE". */
static int fail_inc(struct cfl__yinc *inc, const struct cfl__ynode *at, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int fail_inc(struct cfl__yinc *inc, const struct cfl__ynode *at, const char *fmt, ...)
{
	char shown[96], rule[768];
	va_list ap;

	cfl__quote(shown, sizeof(shown), at->str);
	va_start(ap, fmt);
	vsnprintf(rule, sizeof(rule), fmt, ap);
	va_end(ap);
	return fail(inc, at, CFL_ECONFIG, "include '%s': %s", shown, rule);
}

static int oom(struct cfl__yinc *inc, const struct cfl__ynode *at)
{
	return fail(inc, at, CFL_ENOMEM, "out of memory");
}

static int inside_root(const struct cfl__yinc *inc, const char *real)
{
	size_t n = strlen(inc->root);

	if (n == 1 && inc->root[0] == '/')
		return 1;
	return strncmp(real, inc->root, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

/* The included file's real path, checked: inside the root, a regular file. */
static int resolve(struct cfl__yinc *inc, const struct cfl__ynode *at, const struct src *from,
                   char real[PATH_MAX])
{
	char path[PATH_MAX];
	struct stat st;
	int n;

	if (at->str[0] == '/')
		n = snprintf(path, sizeof(path), "%s", at->str);
	else
		n = snprintf(path, sizeof(path), "%s/%s", from->dir, at->str);
	if (n < 0 || (size_t)n >= sizeof(path))
		return fail_inc(inc, at, "path too long");
	if (realpath(path, real) == NULL)
		return fail_inc(inc, at, "cannot open '%s': %s", path, strerror(errno));
	if (!inside_root(inc, real))
		return fail_inc(inc, at,
		                "include path escapes root (it resolves to '%s', outside "
		                "the project file's folder '%s')",
		                real, inc->root);
	if (stat(real, &st) != 0 || !S_ISREG(st.st_mode))
		return fail_inc(inc, at, "'%s' is not a regular file", real);
	if ((unsigned long long)st.st_size > CFL__INCLUDE_MAX_BYTES - inc->bytes)
		return fail_inc(inc, at,
		                "the included files are larger than %u bytes together "
		                "(the limit)",
		                (unsigned)CFL__INCLUDE_MAX_BYTES);
	return 0;
}

static int check_cycle(struct cfl__yinc *inc, const struct cfl__ynode *at, const char *real,
                       const char *name)
{
	char msg[768];
	size_t used = 0;
	int i = 0;

	while (i < inc->depth &&
	       (inc->chain_real[i] == NULL || strcmp(inc->chain_real[i], real) != 0))
		i++;
	if (i == inc->depth)
		return 0;
	for (; i < inc->depth && used < sizeof(msg); i++)
		used += (size_t)snprintf(msg + used, sizeof(msg) - used, "%s -> ",
		                         inc->chain_name[i]);
	if (used < sizeof(msg))
		snprintf(msg + used, sizeof(msg) - used, "%s", name);
	return fail(inc, at, CFL_ECONFIG, "include cycle: %s", msg);
}

/* The name an included file gets in messages: the include as written, in the folder of the
 * including file's name ("conf/project.yml" including "parts/a.yml": "conf/parts/a.yml"). */
static int name_of(struct cfl__yinc *inc, const struct cfl__ynode *at, const struct src *from,
                   char **out)
{
	const char *slash = strrchr(from->name, '/');
	int dir_len = slash != NULL && at->str[0] != '/' ? (int)(slash - from->name) + 1 : 0;
	size_t size = (size_t)dir_len + at->len + 1;
	char **names;

	if (inc->n_files >= CFL__INCLUDE_MAX_FILES)
		return fail_inc(inc, at, "more than %d included files", CFL__INCLUDE_MAX_FILES);
	names = realloc(inc->names, (inc->n_files + 1) * sizeof(*names));
	if (names == NULL)
		return oom(inc, at);
	inc->names = names;
	if ((*out = malloc(size)) == NULL)
		return oom(inc, at);
	snprintf(*out, size, "%.*s%s", dir_len, from->name, at->str);
	inc->names[inc->n_files++] = *out;
	return 0;
}

static int expand(struct cfl__yinc *inc, struct cfl__ynode *n, const struct src *from);

/* The folder of a real (absolute) path: "/a/b.yml" -> "/a", "/b.yml" -> "/". */
static void dir_of(const char *real, char dir[PATH_MAX])
{
	char *slash;

	snprintf(dir, PATH_MAX, "%s", real);
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
}

/* Reads, parses and expands the file that include value `at` names; *tree is its mapping
 * (NULL for an empty file). */
static int load_one(struct cfl__yinc *inc, const struct cfl__ynode *at, const struct src *from,
                    struct cfl__ynode **tree)
{
	char real[PATH_MAX], dir[PATH_MAX], *data = NULL, *name;
	struct src sub = {.dir = dir};
	size_t len = 0;
	int rc;

	*tree = NULL;
	if (at->kind != CFL__Y_SCALAR || at->len == 0)
		return fail(inc, at, CFL_ECONFIG,
		            "'include' names a file: a non-empty string, not %s",
		            at->kind == CFL__Y_SCALAR ? "an empty one" : cfl__yaml_kind_name(at));
	if (inc->depth > CFL__INCLUDE_MAX_DEPTH)
		return fail_inc(inc, at, "includes nested more than %d deep",
		                CFL__INCLUDE_MAX_DEPTH);
	if ((rc = resolve(inc, at, from, real)) != 0 || (rc = name_of(inc, at, from, &name)) != 0 ||
	    (rc = check_cycle(inc, at, real, name)) != 0)
		return rc;
	rc = cfl__fs_read_file(real, CFL__INCLUDE_MAX_BYTES - inc->bytes, &data, &len, inc->e);
	if (rc == 0)
		rc = cfl__yaml_load(data, len, name, tree, inc->e);
	free(data);
	inc->bytes += len;
	if (rc != 0) {
		char shown[96];

		cfl__quote(shown, sizeof(shown), at->str);
		return cfl_err_prefix(inc->e, "%s:%d:%d: include '%s'", at->file, at->line, at->col,
		                      shown);
	}
	if (*tree != NULL && (*tree)->kind != CFL__Y_MAP)
		return fail_inc(inc, at, "the file holds %s, not a mapping",
		                cfl__yaml_kind_name(*tree));
	dir_of(real, dir);
	sub.name = name;
	inc->chain_real[inc->depth] = real;
	inc->chain_name[inc->depth++] = name;
	rc = *tree != NULL ? expand(inc, *tree, &sub) : 0;
	inc->depth--;
	return rc;
}

/* The growing array of a mapping's new pairs. */
struct pairs {
	struct cfl__ynode **kids;
	size_t n, cap;
};

static int room(struct cfl__yinc *inc, const struct cfl__ynode *at, struct pairs *out, size_t more)
{
	struct cfl__ynode **k;
	size_t cap = out->cap;

	while (cap < out->n + more)
		cap = cap * 2 + 8;
	if (cap == out->cap)
		return 0;
	if ((k = realloc(out->kids, cap * sizeof(*k))) == NULL)
		return oom(inc, at);
	out->kids = k;
	out->cap = cap;
	return 0;
}

/* Appends the pairs of the mappings of the files `v` names to `out`, taking them over. */
static int include_files(struct cfl__yinc *inc, const struct cfl__ynode *v, const struct src *from,
                         struct pairs *out)
{
	const struct cfl__ynode *one[1] = {v};
	const struct cfl__ynode *const *files = one;
	size_t count = 1;

	if (v->kind == CFL__Y_MAP || cfl__yaml_is_null(v))
		return fail(inc, v, CFL_ECONFIG,
		            "'include' must be a file name or a list of file names, not %s",
		            v->kind == CFL__Y_MAP ? "a mapping" : "nothing");
	if (v->kind == CFL__Y_SEQ) {
		files = (const struct cfl__ynode *const *)v->kids;
		count = v->n;
	}
	for (size_t i = 0; i < count; i++) {
		struct cfl__ynode *tree = NULL;
		int rc = load_one(inc, files[i], from, &tree);

		if (rc == 0 && tree != NULL && (rc = room(inc, files[i], out, tree->n)) == 0) {
			for (size_t j = 0; j < tree->n; j++)
				out->kids[out->n++] = tree->kids[j];
			tree->n = 0;
		}
		cfl__yaml_free(tree);
		if (rc != 0)
			return rc;
	}
	return 0;
}

struct keyref {
	const struct cfl__ynode *key;
	size_t idx;
};

static int keyref_cmp(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	int c = strcmp(x->key->str, y->key->str);

	if (c != 0)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* After a merge: every key at most once (sorted, so a large mapping costs n log n). */
static int check_dups(struct cfl__yinc *inc, const struct cfl__ynode *m)
{
	struct keyref *refs = malloc((m->n / 2 + 1) * sizeof(*refs));
	int rc = 0;

	if (refs == NULL)
		return oom(inc, m);
	for (size_t i = 0; i + 1 < m->n; i += 2)
		refs[i / 2] = (struct keyref){m->kids[i], i};
	qsort(refs, m->n / 2, sizeof(*refs), keyref_cmp);
	for (size_t i = 1; i < m->n / 2 && rc == 0; i++) {
		const struct cfl__ynode *a = refs[i - 1].key, *b = refs[i].key;

		if (strcmp(a->str, b->str) == 0)
			rc = fail(inc, b, CFL_ECONFIG,
			          "key '%s' is given twice in one mapping once includes are merged "
			          "(first at %s:%d:%d); cfl refuses it rather than let one win",
			          b->str, a->file, a->line, a->col);
	}
	free(refs);
	return rc;
}

/* Rebuilds the pairs of mapping `m`: every include pair is replaced by the included pairs.
 * Each pair is moved from m->kids to the new array (or freed); on an error the pairs not yet
 * reached are freed here and the rest stays in `m`, freed with the tree. */
static int expand_map(struct cfl__yinc *inc, struct cfl__ynode *m, const struct src *from)
{
	struct pairs out = {NULL, 0, 0};
	size_t merged = 0;
	int rc = room(inc, m, &out, m->n);

	for (size_t i = 0; i + 1 < m->n && rc == 0; i += 2) {
		struct cfl__ynode *k = m->kids[i], *v = m->kids[i + 1];

		m->kids[i] = m->kids[i + 1] = NULL;
		if (strcmp(k->str, "include") != 0) {
			if ((rc = room(inc, k, &out, 2)) != 0) {
				cfl__yaml_free(k);
				cfl__yaml_free(v);
				break;
			}
			out.kids[out.n++] = k;
			out.kids[out.n++] = v;
			rc = expand(inc, v, from);
			continue;
		}
		merged++;
		if (inc->root == NULL)
			rc = fail(inc, k, CFL_ECONFIG,
			          "'include' needs the project file's folder to find the file "
			          "(this project was given from memory)");
		else
			rc = include_files(inc, v, from, &out);
		cfl__yaml_free(k);
		cfl__yaml_free(v);
	}
	for (size_t i = 0; i < m->n; i++)
		cfl__yaml_free(m->kids[i]);
	free(m->kids);
	m->kids = out.kids;
	m->n = out.n;
	m->cap = out.cap;
	return rc == 0 && merged > 0 ? check_dups(inc, m) : rc;
}

static int expand(struct cfl__yinc *inc, struct cfl__ynode *n, const struct src *from)
{
	int rc = 0;

	if (n->kind == CFL__Y_MAP)
		return expand_map(inc, n, from);
	for (size_t i = 0; n->kind == CFL__Y_SEQ && i < n->n && rc == 0; i++)
		rc = expand(inc, n->kids[i], from);
	return rc;
}

/* ---- the load's state -------------------------------------------------------------- */

int cfl__yinc_init(struct cfl__yinc *inc, const char *dir, const char *self, const char *name,
                   struct cfl_err *e)
{
	memset(inc, 0, sizeof(*inc));
	inc->e = e;
	inc->chain_name[0] = name;
	inc->depth = 1;
	if (dir == NULL)
		return 0;
	if ((inc->root = realpath(dir, NULL)) == NULL)
		return cfl_err_set(e, errno == ENOMEM ? CFL_ENOMEM : CFL_ECONFIG,
		                   "%s: cannot resolve its folder '%s': %s", name, dir,
		                   strerror(errno));
	if (self != NULL)
		inc->self_real = realpath(self, NULL); /* NULL: no cycle through it is seen early,
		                                        * the depth bound still ends it */
	inc->chain_real[0] = inc->self_real;
	return 0;
}

int cfl__yinc_expand(struct cfl__yinc *inc, struct cfl__ynode *root, const char *name)
{
	struct src top = {.name = name, .dir = inc->root};

	if (root == NULL)
		return 0;
	return expand(inc, root, &top);
}

void cfl__yinc_free(struct cfl__yinc *inc)
{
	for (size_t i = 0; i < inc->n_files; i++)
		free(inc->names[i]);
	free(inc->names);
	free(inc->root);
	free(inc->self_real);
	memset(inc, 0, sizeof(*inc));
}
