/* Internal to the project-file loader, src/provision/project*.c; nothing here is installed
 * or used elsewhere:
 *   project_yaml.c   a small, bounded YAML tree built from libyaml's events
 *   project_check.c  syntax checks for names, hosts and e-mail addresses
 *   project_value.c  the loader's messages and typed values
 *   project_parts.c  the participants
 *   project_include.c `include:` keys: other files' mappings merged into the tree
 *   project.c        the top level, builders and the public API (include/cfl/project.h) */
#ifndef CFL_PROVISION_PROJECT_INT_H
#define CFL_PROVISION_PROJECT_INT_H

#include "cfl/err.h"
#include "cfl/pki.h"
#include "cfl/project.h"

#include <stddef.h>

#define CFL__YAML_MAX_SCALAR 4096    /* bytes of one scalar */
#define CFL__YAML_MAX_NODES  2000000 /* nodes in one document: 20 per participant */
#define CFL__YAML_MAX_DEPTH  64      /* nested lists/mappings; a project file needs about 6 */

enum cfl__ykind { CFL__Y_SCALAR = 0, CFL__Y_SEQ, CFL__Y_MAP };

/* One node of the tree. Aliases are rejected while building, so the tree is a real tree:
 * every node has exactly one parent and walking it costs at most its size. */
struct cfl__ynode {
	enum cfl__ykind kind;
	const char *file; /* the name of the file it comes from, for messages (not owned) */
	int line, col;    /* 1-based position of the node's first character */
	int plain;        /* scalar written plain without a tag: may stand for null */
	char *str;        /* scalar: NUL-terminated value (no NUL inside); NULL otherwise */
	size_t len;
	struct cfl__ynode **kids; /* list: items; mapping: key, value, key, value, ... */
	size_t n, cap;
};

/* Parses `data` (one YAML document; none at all gives *root = NULL) into a tree; every node's
 * `file` is `name`, which must outlive the tree.
 * Returns 0; CFL_EPARSE ("NAME:LINE:COL: yaml syntax error: ...") for what libyaml rejects;
 * CFL_ECONFIG ("NAME:LINE:COL: ...") for an alias, a second document, a mapping key that is
 * not a scalar, or a value, node count or depth past the limits above; CFL_ENOMEM.
 * *root is freed with cfl__yaml_free. */
int cfl__yaml_load(const char *data, size_t len, const char *name, struct cfl__ynode **root,
                   struct cfl_err *e);
void cfl__yaml_free(struct cfl__ynode *n);

/* "a string", "a list" or "a mapping", for messages. */
const char *cfl__yaml_kind_name(const struct cfl__ynode *n);
/* 1 for a plain null scalar ("", "~", "null", "Null", "NULL"), as YAML 1.1 reads it. */
int cfl__yaml_is_null(const struct cfl__ynode *n);

/* ---- includes (project_include.c) ---------------------------------------------------- */

#define CFL__INCLUDE_MAX_DEPTH 8  /* a file included by an included file ... 8 levels */
#define CFL__INCLUDE_MAX_FILES 64 /* included files in one load (the same file counts again) */
#define CFL__INCLUDE_MAX_BYTES CFL_PROJECT_MAX_BYTES /* all included files together */

/* The includes of one load. Included nodes point at `names`, so it lives as long as the tree. */
struct cfl__yinc {
	char *root;   /* realpath of the project file's folder; NULL: includes are refused */
	char **names; /* display names of the files included, owned */
	size_t n_files;
	size_t bytes;                                       /* read so far */
	int depth;                                          /* files in `chain` */
	const char *chain_real[CFL__INCLUDE_MAX_DEPTH + 1]; /* being included, for cycles */
	const char *chain_name[CFL__INCLUDE_MAX_DEPTH + 1];
	char *self_real; /* the project file's realpath (chain_real[0]), owned; may be NULL */
	struct cfl_err *e;
};

/* Prepares `inc` for the project file `name`: includes resolve against `dir` and may not
 * leave it; `self` (may be NULL) is the project file itself, for cycles. dir = NULL refuses
 * every include. Returns 0, or CFL_ECONFIG when `dir` cannot be resolved, or CFL_ENOMEM. */
int cfl__yinc_init(struct cfl__yinc *inc, const char *dir, const char *self, const char *name,
                   struct cfl_err *e);
/* Replaces every `include: FILE` or `include: [FILES]` pair in the tree of `name` (in any
 * mapping, at any depth) by the mappings of those files, in place and recursively. A key that
 * the merge would repeat in one mapping is refused. Errors (CFL_ECONFIG, CFL_EPARSE from an
 * included file's syntax, CFL_ENOMEM) name the including file, line and column. */
int cfl__yinc_expand(struct cfl__yinc *inc, struct cfl__ynode *root, const char *name);
void cfl__yinc_free(struct cfl__yinc *inc);

/* The loader with includes resolved against `dir` (NULL: refused) and `self` as above; the
 * public cfl_project_load and cfl_project_load_mem are this, and the fuzz target uses it
 * with a folder of its own. */
int cfl__project_load_at(const char *data, size_t len, const char *name, const char *dir,
                         const char *self, struct cfl_project **out, struct cfl_err *e);

/* Name checks; each returns 1 if `s` is valid, else 0. */
int cfl__is_hostname(const char *s); /* RFC 1123 host name, at most 255 bytes */
int cfl__is_ip(const char *s);       /* IPv4 or IPv6 literal (inet_pton) */
int cfl__is_host(const char *s);     /* either of the above */
int cfl__is_email(const char *s);    /* [A-Za-z0-9._+-]+ not starting with '.', '@', a host
                                      * name with a dot */
/* Non-empty, only ASCII letters, digits and the characters in `extra`. */
int cfl__is_word(const char *s, const char *extra);

/* Copies `s` into buf for a message: control bytes become '?', and a value longer than
 * fits (or than 80 bytes) is cut and ends with "...". */
void cfl__quote(char *buf, size_t size, const char *s);

/* ---- the loader (project_value.c, project_parts.c) ---------------------------------- */

#define CFL__HOST_RULE                                                                      \
	"a host name of dot-separated labels of letters, digits and '-' (at most 63 bytes " \
	"each, 255 in total) or an IPv4/IPv6 address"

/* Participant names for duplicate detection: open addressing over indexes into parts[]. */
struct cfl__nameset {
	size_t *slot; /* index + 1, 0 = empty */
	size_t cap;   /* a power of two, more than twice the participants */
};

/* The state of one load; lives on cfl_project_load_mem's stack. */
struct cfl__pl {
	const char *file; /* the name used in messages */
	struct cfl_err *e;
	struct cfl_project *p; /* being filled */
	const char *pname;     /* the participant being read, for messages */
	size_t pidx;           /* its 1-based position, for messages before its name is known */
	unsigned warnings;
	char qbuf[4][96]; /* quoted values for one message */
	unsigned qi;
	struct cfl__nameset names;
	const struct cfl__ynode *server_at; /* `type` of the first server */
	size_t server_idx;
	const struct cfl__ynode *top_kt_at, *builder_kt_at;
	enum cfl_key_type builder_kt;
};

/* Sets ld->e to CFL_ECONFIG with "FILE:LINE:COL: [participant 'NAME': ]RULE", the position
 * that of `at`. Used through CFL__FAIL(), which yields CFL_ECONFIG: `return CFL__FAIL(...)`. */
void cfl__pl_report(struct cfl__pl *ld, const struct cfl__ynode *at, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
#define CFL__FAIL(...) (cfl__pl_report(__VA_ARGS__), CFL_ECONFIG)
/* Logs a warning with the same prefix; at most 100 per load, then one line saying so. */
void cfl__pl_warn(struct cfl__pl *ld, const struct cfl__ynode *at, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* A value from the file made safe for a message (cfl__quote); four stay valid at a time. */
const char *cfl__pl_q(struct cfl__pl *ld, const char *s);
/* Sets ld->e to CFL_ENOMEM; returns CFL_ENOMEM. */
int cfl__pl_oom(struct cfl__pl *ld);

/* The value of the first `key` in mapping `m`, or NULL. */
const struct cfl__ynode *cfl__pl_find(const struct cfl__ynode *m, const char *key);

/* Typed values of `v`, the value of `key`. Each returns 0, or CFL_ECONFIG with the rule in
 * ld->e (CFL_ENOMEM for allocation); strings are copied into *out (freed first). */
int cfl__pl_str(struct cfl__pl *ld, const char *key, const struct cfl__ynode *v); /* scalar */
int cfl__pl_dup(struct cfl__pl *ld, const char *key, const struct cfl__ynode *v, char **out);
int cfl__pl_int(struct cfl__pl *ld, const char *key, const struct cfl__ynode *v, int lo, int hi,
                int *out);
int cfl__pl_conn_sec(struct cfl__pl *ld, const struct cfl__ynode *v, enum cfl_conn_sec *out);
int cfl__pl_key_type(struct cfl__pl *ld, const struct cfl__ynode *v, enum cfl_key_type *out);
int cfl__pl_host(struct cfl__pl *ld, const char *key, const struct cfl__ynode *v, char **out);
int cfl__pl_path(struct cfl__pl *ld, const char *key, const struct cfl__ynode *v, char **out);

/* Reads the `participants` list `v` into ld->p->parts (project_parts.c). */
int cfl__pl_participants(struct cfl__pl *ld, const struct cfl__ynode *v);

#endif
