/* A bounded YAML tree for the project loader, built from libyaml's event API.
 *
 * libyaml's own document loader shares aliased nodes (and an anchor on a collection may be
 * aliased inside itself, which makes a cycle), so a naive walk of its documents can be made
 * to visit a node exponentially often or forever ("billion laughs"). Building our own tree
 * from events lets us refuse aliases at the point they are written, count nodes and depth
 * as they arrive, and cap every scalar before anything else looks at it. */
#include "provision/project_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct builder {
	const char *data; /* the input, to turn reader-error offsets into line:col */
	size_t len;
	const char *name;
	struct cfl_err *e;
	struct cfl__ynode *root;
	struct cfl__ynode *stack[CFL__YAML_MAX_DEPTH];
	int depth;
	size_t nodes;
	int docs;
};

void cfl__yaml_free(struct cfl__ynode *n)
{
	if (n == NULL)
		return;
	/* Recursion is bounded by CFL__YAML_MAX_DEPTH. */
	for (size_t i = 0; i < n->n; i++)
		cfl__yaml_free(n->kids[i]);
	free(n->kids);
	free(n->str);
	free(n);
}

const char *cfl__yaml_kind_name(const struct cfl__ynode *n)
{
	switch (n->kind) {
	case CFL__Y_SCALAR:
		return "a string";
	case CFL__Y_SEQ:
		return "a list";
	case CFL__Y_MAP:
		return "a mapping";
	default:
		return "an unknown node";
	}
}

int cfl__yaml_is_null(const struct cfl__ynode *n)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

	if (n == NULL || n->kind != CFL__Y_SCALAR || !n->plain)
		return 0;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(n->str, nulls[i]) == 0)
			return 1;
	return 0;
}

static int fail_at(struct builder *b, int code, yaml_mark_t m, const char *what)
{
	cfl_err_set(b->e, code, "%s:%zu:%zu: %s", b->name, m.line + 1, m.column + 1, what);
	return code;
}

static int oom(struct builder *b)
{
	cfl_err_set(b->e, CFL_ENOMEM, "%s: out of memory", b->name);
	return CFL_ENOMEM;
}

/* libyaml's reader reports a byte offset, not a mark: count lines up to it. */
static void offset_to_mark(const struct builder *b, size_t off, yaml_mark_t *m)
{
	size_t line = 0, col = 0;

	if (off > b->len)
		off = b->len;
	for (size_t i = 0; i < off; i++) {
		if (b->data[i] == '\n') {
			line++;
			col = 0;
		} else {
			col++;
		}
	}
	m->index = off;
	m->line = line;
	m->column = col;
}

static int syntax_error(struct builder *b, const yaml_parser_t *p)
{
	char what[512];
	yaml_mark_t m = p->problem_mark;
	const char *problem = p->problem != NULL ? p->problem : "unknown problem";

	if (p->error == YAML_MEMORY_ERROR)
		return oom(b);
	if (p->error == YAML_READER_ERROR) {
		offset_to_mark(b, p->problem_offset, &m);
		if (p->problem_value >= 0)
			snprintf(what, sizeof(what), "yaml syntax error: %s (byte 0x%02x)", problem,
			         (unsigned)p->problem_value & 0xffu);
		else
			snprintf(what, sizeof(what), "yaml syntax error: %s", problem);
	} else if (p->context != NULL) {
		snprintf(what, sizeof(what), "yaml syntax error: %s (%s at line %zu, column %zu)",
		         problem, p->context, p->context_mark.line + 1, p->context_mark.column + 1);
	} else {
		snprintf(what, sizeof(what), "yaml syntax error: %s", problem);
	}
	return fail_at(b, CFL_EPARSE, m, what);
}

static int node_new(struct builder *b, enum cfl__ykind kind, yaml_mark_t m, struct cfl__ynode **out)
{
	struct cfl__ynode *n;

	*out = NULL;
	if (b->nodes >= CFL__YAML_MAX_NODES)
		return fail_at(b, CFL_ECONFIG, m, "too many yaml nodes (at most 2000000)");
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return oom(b);
	b->nodes++;
	n->kind = kind;
	n->file = b->name;
	n->line = (int)m.line + 1;
	n->col = (int)m.column + 1;
	*out = n;
	return 0;
}

/* Hangs `n` under the innermost open collection (or makes it the root); takes ownership. */
static int attach(struct builder *b, struct cfl__ynode *n)
{
	struct cfl__ynode *parent;

	if (b->depth == 0) {
		/* Unreachable: libyaml gives one root per document, and a second document is
		 * refused at its start. Kept so that no path can drop a tree. */
		if (b->root != NULL) {
			cfl_err_set(b->e, CFL_ECONFIG, "%s:%d:%d: more than one yaml document",
			            b->name, n->line, n->col);
			cfl__yaml_free(n);
			return CFL_ECONFIG;
		}
		b->root = n;
		return 0;
	}
	parent = b->stack[b->depth - 1];
	if (parent->kind == CFL__Y_MAP && parent->n % 2 == 0 && n->kind != CFL__Y_SCALAR) {
		cfl_err_set(b->e, CFL_ECONFIG, "%s:%d:%d: mapping keys must be strings, not %s",
		            b->name, n->line, n->col, cfl__yaml_kind_name(n));
		cfl__yaml_free(n);
		return CFL_ECONFIG;
	}
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 8;
		struct cfl__ynode **k = realloc(parent->kids, cap * sizeof(struct cfl__ynode *));

		if (k == NULL) {
			cfl__yaml_free(n);
			return oom(b);
		}
		parent->kids = k;
		parent->cap = cap;
	}
	parent->kids[parent->n++] = n;
	return 0;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
	const yaml_char_t *v = ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	struct cfl__ynode *n;
	int rc;

	if (len > CFL__YAML_MAX_SCALAR)
		return fail_at(b, CFL_ECONFIG, ev->start_mark,
		               "value longer than 4096 bytes (the limit for any value)");
	/* A double-quoted "\0" yields a NUL byte: no name, host or path may hold one. */
	if (len > 0 && memchr(v, '\0', len) != NULL)
		return fail_at(b, CFL_ECONFIG, ev->start_mark, "value contains a NUL character");
	rc = node_new(b, CFL__Y_SCALAR, ev->start_mark, &n);
	if (rc != 0)
		return rc;
	n->str = malloc(len + 1);
	if (n->str == NULL) {
		cfl__yaml_free(n);
		return oom(b);
	}
	if (len > 0)
		memcpy(n->str, v, len);
	n->str[len] = '\0';
	n->len = len;
	n->plain =
	        ev->data.scalar.plain_implicit && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	return attach(b, n);
}

static int on_start(struct builder *b, const yaml_event_t *ev, enum cfl__ykind kind)
{
	struct cfl__ynode *n;
	int rc;

	if (b->depth >= CFL__YAML_MAX_DEPTH)
		return fail_at(b, CFL_ECONFIG, ev->start_mark,
		               "lists and mappings nested too deeply (at most 64 levels)");
	rc = node_new(b, kind, ev->start_mark, &n);
	if (rc != 0)
		return rc;
	rc = attach(b, n);
	if (rc != 0)
		return rc;
	b->stack[b->depth++] = n;
	return 0;
}

/* Handles one event; returns 0 to go on, 1 at the end of the stream, or an error. */
static int on_event(struct builder *b, const yaml_event_t *ev)
{
	char what[256];

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		/* PyYAML's safe_load (what NVFlare uses) refuses a second document too. */
		if (b->docs++ > 0)
			return fail_at(b, CFL_ECONFIG, ev->start_mark,
			               "more than one yaml document (a project file holds one)");
		return 0;
	case YAML_ALIAS_EVENT:
		snprintf(what, sizeof(what), "yaml aliases are not supported ('*%.64s')",
		         (const char *)ev->data.alias.anchor);
		return fail_at(b, CFL_ECONFIG, ev->start_mark, what);
	case YAML_SCALAR_EVENT:
		return on_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return on_start(b, ev, CFL__Y_SEQ);
	case YAML_MAPPING_START_EVENT:
		return on_start(b, ev, CFL__Y_MAP);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (b->depth > 0)
			b->depth--;
		return 0;
	case YAML_STREAM_END_EVENT:
		return 1;
	case YAML_STREAM_START_EVENT:
	case YAML_DOCUMENT_END_EVENT:
	case YAML_NO_EVENT:
	default:
		return 0;
	}
}

int cfl__yaml_load(const char *data, size_t len, const char *name, struct cfl__ynode **root,
                   struct cfl_err *e)
{
	struct builder b = {.data = data, .len = len, .name = name, .e = e};
	yaml_parser_t parser;
	yaml_event_t ev;
	int rc = 0;

	*root = NULL;
	if (!yaml_parser_initialize(&parser))
		return cfl_err_set(e, CFL_ENOMEM, "%s: out of memory", name);
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	while (rc == 0) {
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = syntax_error(&b, &parser);
			break;
		}
		rc = on_event(&b, &ev);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	if (rc < 0) {
		cfl__yaml_free(b.root);
		return rc;
	}
	*root = b.root;
	return 0;
}
