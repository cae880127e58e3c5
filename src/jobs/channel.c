/* The client_api channel's codec (channel.h): framing, the script's messages with strict
 * types, and the metric rows that go to the server. */
#include "channel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- values ------------------------------------------------------------------------------ */

/* A finite number (integer or real) into *out. 0, or -1. */
static int finite_number(const json_t *v, double *out)
{
	if (!json_is_number(v))
		return -1;
	*out = json_number_value(v);
	return isfinite(*out) ? 0 : -1;
}

/* A tag: 1..CFL__CHAN_TAG_MAX bytes (UTF-8, as jansson checked) without control characters. */
static int tag_ok(const json_t *v)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	if (s == NULL || n == 0 || n > CFL__CHAN_TAG_MAX || strlen(s) != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	}
	return 1;
}

static int bad(struct cfl_err *e, const char *what)
{
	return cfl_err_set(e, CFL_EPROTO, "%s", what);
}

/* --- the script's messages ------------------------------------------------------------------- */

static int decode_hello(json_t *o, struct cfl__chan_msg *m, struct cfl_err *e)
{
	json_t *v = json_object_get(o, "version");

	if (!json_is_integer(v))
		return bad(e, "hello: \"version\" is not an integer");
	if (json_integer_value(v) != 1)
		return cfl_err_set(e, CFL_EPROTO,
		                   "hello: protocol version %" JSON_INTEGER_FORMAT
		                   " (this site speaks 1)",
		                   json_integer_value(v));
	m->version = 1;
	return 0;
}

static int decode_metric(json_t *o, struct cfl__chan_metric *mt, struct cfl_err *e)
{
	json_t *tag = json_object_get(o, "tag"), *step = json_object_get(o, "step");

	if (!tag_ok(tag))
		return bad(e, "metric: \"tag\" is not a string of 1..128 printable bytes");
	if (finite_number(json_object_get(o, "value"), &mt->value) != 0)
		return bad(e, "metric: \"value\" is not a finite number");
	if (step != NULL && (!json_is_integer(step) || json_integer_value(step) < 0))
		return bad(e, "metric: \"step\" is not an integer >= 0");
	mt->step = step != NULL ? json_integer_value(step) : 0;
	snprintf(mt->tag, sizeof(mt->tag), "%s", json_string_value(tag));
	return 0;
}

static int decode_result_metrics(json_t *v, struct cfl__chan_msg *m, struct cfl_err *e)
{
	const char *name;
	json_t *x;

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return bad(e, "result: \"metrics\" is not an object");
	if (json_object_size(v) > CFL__CHAN_NAMES_MAX)
		return bad(e, "result: more than 64 \"metrics\"");
	json_object_foreach (v, name, x) {
		struct cfl__chan_metric *mt = &m->metrics[m->n_metrics];
		json_t *key = json_string(name);
		int ok = key != NULL && tag_ok(key);

		json_decref(key);
		if (!ok)
			return bad(e, "result: a \"metrics\" name is not 1..128 printable bytes");
		if (finite_number(x, &mt->value) != 0)
			return cfl_err_set(e, CFL_EPROTO,
			                   "result: metric '%s' is not a finite number", name);
		snprintf(mt->tag, sizeof(mt->tag), "%s", name);
		mt->step = -1;
		m->n_metrics++;
	}
	return 0;
}

static int decode_result(json_t *o, struct cfl__chan_msg *m, struct cfl_err *e)
{
	json_t *model = json_object_get(o, "model"), *meta = json_object_get(o, "meta");
	json_t *pt = json_object_get(o, "params_type"), *steps;
	const char *t = json_string_value(pt);

	if (!json_is_boolean(model))
		return bad(e, "result: \"model\" is not true or false");
	m->model = json_is_true(model);
	if (pt != NULL && !json_is_null(pt) &&
	    (t == NULL || (strcmp(t, "FULL") != 0 && strcmp(t, "DIFF") != 0)))
		return bad(e, "result: \"params_type\" is not \"FULL\" or \"DIFF\"");
	m->diff = t != NULL && strcmp(t, "DIFF") == 0;
	if (meta != NULL && !json_is_null(meta) && !json_is_object(meta))
		return bad(e, "result: \"meta\" is not an object");
	steps = json_object_get(meta, "NUM_STEPS_CURRENT_ROUND");
	if (steps != NULL && !json_is_null(steps)) {
		if (!json_is_integer(steps) || json_integer_value(steps) < 0 ||
		    (uint64_t)json_integer_value(steps) > CFL__CHAN_WEIGHT_MAX)
			return bad(e, "result: meta.NUM_STEPS_CURRENT_ROUND is not an integer "
			              "0..2^53");
		m->has_steps = 1;
		m->steps = (uint64_t)json_integer_value(steps);
	}
	return decode_result_metrics(json_object_get(o, "metrics"), m, e);
}

int cfl__chan_decode(const uint8_t *p, size_t n, struct cfl__chan_msg *m, struct cfl_err *e)
{
	json_error_t je;
	json_t *o;
	const char *type;
	int rc;

	memset(m, 0, sizeof(*m));
	if (n == 0 || n > CFL__CHAN_MSG_MAX)
		return bad(e, "a message of 0 bytes or over 1 MiB");
	o = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &je);
	if (o == NULL)
		return cfl_err_set(e, CFL_EPROTO, "not JSON: %s", je.text);
	type = json_string_value(json_object_get(o, "type"));
	if (!json_is_object(o) || type == NULL)
		rc = bad(e, "not a JSON object with a string \"type\"");
	else if (strcmp(type, "hello") == 0)
		rc = (m->type = CFL__CHAN_HELLO, decode_hello(o, m, e));
	else if (strcmp(type, "result") == 0)
		rc = (m->type = CFL__CHAN_RESULT, decode_result(o, m, e));
	else if (strcmp(type, "metric") == 0)
		rc = (m->type = CFL__CHAN_METRIC, decode_metric(o, &m->metric, e));
	else
		rc = cfl_err_set(e, CFL_EPROTO, "unknown message type '%.64s'", type);
	json_decref(o);
	return rc;
}

/* --- framing -----------------------------------------------------------------------------------
 */

int cfl__chan_feed(struct cfl__chan_reader *r, const uint8_t *d, size_t n, struct cfl_err *e)
{
	/* What stays between feeds is less than one whole message with its length. */
	size_t need = 4 + CFL__CHAN_MSG_MAX + CFL__CHAN_CHUNK;

	if (n > CFL__CHAN_CHUNK || r->len + n > need)
		return cfl_err_set(e, CFL_EINVAL, "channel chunk too large");
	if (r->cap < r->len + n) {
		size_t cap = r->cap ? r->cap : 4096;
		uint8_t *b;

		while (cap < r->len + n)
			cap *= 2;
		if (cap > need)
			cap = need;
		if ((b = realloc(r->buf, cap)) == NULL)
			return cfl_err_set(e, CFL_ENOMEM, "out of memory");
		r->buf = b;
		r->cap = cap;
	}
	if (n > 0)
		memcpy(r->buf + r->len, d, n);
	r->len += n;
	return 0;
}

int cfl__chan_next(struct cfl__chan_reader *r, struct cfl__chan_msg *m, struct cfl_err *e)
{
	uint32_t n;
	int rc;

	if (r->len < 4)
		return 0;
	n = (uint32_t)r->buf[0] << 24 | (uint32_t)r->buf[1] << 16 | (uint32_t)r->buf[2] << 8 |
	    r->buf[3];
	if (n == 0 || n > CFL__CHAN_MSG_MAX)
		return cfl_err_set(e, CFL_EPROTO, "a message length of %u bytes (1..1 MiB)",
		                   (unsigned)n);
	if (r->len - 4 < n)
		return 0;
	rc = cfl__chan_decode(r->buf + 4, n, m, e);
	memmove(r->buf, r->buf + 4 + n, r->len - 4 - n);
	r->len -= 4 + n;
	return rc == 0 ? 1 : rc;
}

void cfl__chan_reader_release(struct cfl__chan_reader *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

int cfl__chan_frame(json_t *v, uint8_t **out, size_t *len, struct cfl_err *e)
{
	char *text = json_dumps(v, JSON_COMPACT);
	size_t n = text != NULL ? strlen(text) : 0;

	*out = NULL;
	if (text == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	if (n == 0 || n > CFL__CHAN_MSG_MAX) {
		free(text);
		return cfl_err_set(e, CFL_ETOOBIG, "a channel message over 1 MiB");
	}
	if ((*out = malloc(n + 4)) == NULL) {
		free(text);
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	}
	(*out)[0] = (uint8_t)(n >> 24);
	(*out)[1] = (uint8_t)(n >> 16);
	(*out)[2] = (uint8_t)(n >> 8);
	(*out)[3] = (uint8_t)n;
	memcpy(*out + 4, text, n);
	*len = n + 4;
	free(text);
	return 0;
}

/* --- metric rows --------------------------------------------------------------------------- */

int cfl__rows_add(struct cfl__rows *r, const struct cfl__chan_metric *m)
{
	/* Escapes at most double a tag; the numbers and the punctuation take under 64 bytes. */
	size_t cost = 2 * strlen(m->tag) + 64;
	json_t *row;

	if (r->rows == NULL)
		r->rows = json_array();
	if (r->rows == NULL || json_array_size(r->rows) >= CFL__CHAN_ROUND_ROWS ||
	    r->bytes + cost > CFL__CHAN_ROWS_BYTES)
		return r->dropped++ == 0;
	row = json_pack("[s, I, f]", m->tag, (json_int_t)m->step, m->value);
	if (row == NULL || json_array_append_new(r->rows, row) != 0)
		return r->dropped++ == 0;
	r->bytes += cost;
	return 0;
}

char *cfl__rows_body(const struct cfl__rows *r, size_t *len)
{
	json_t *v;
	char *text;

	if (json_array_size(r->rows) == 0 && r->dropped == 0)
		return NULL;
	v = json_pack("{s:O?, s:I}", "metrics", r->rows, "dropped", (json_int_t)r->dropped);
	text = v != NULL ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	*len = text != NULL ? strlen(text) : 0;
	return text;
}

void cfl__rows_reset(struct cfl__rows *r)
{
	json_decref(r->rows);
	memset(r, 0, sizeof(*r));
}

/* One [tag, step, value] row as an object of its own; NULL if it is not one. */
static json_t *row_object(json_t *row)
{
	json_t *tag = json_array_get(row, 0), *step = json_array_get(row, 1);
	double value;

	if (!json_is_array(row) || json_array_size(row) != 3 || !tag_ok(tag) ||
	    !json_is_integer(step) || json_integer_value(step) < -1 ||
	    finite_number(json_array_get(row, 2), &value) != 0)
		return NULL;
	return json_pack("{s:O, s:O, s:f}", "tag", tag, "step", step, "value", value);
}

int cfl__rows_parse(const uint8_t *p, size_t n, json_t **out, uint64_t *dropped, struct cfl_err *e)
{
	json_t *o, *rows, *d, *row, *obj;
	size_t i;

	*out = NULL;
	*dropped = 0;
	if (n > CFL__CHAN_ROWS_BYTES + CFL__CHAN_CHUNK)
		return bad(e, "metrics: body too large");
	o = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, NULL);
	rows = json_object_get(o, "metrics");
	d = json_object_get(o, "dropped");
	if (!json_is_object(o) || !json_is_array(rows) ||
	    json_array_size(rows) > CFL__CHAN_ROUND_ROWS ||
	    (d != NULL && (!json_is_integer(d) || json_integer_value(d) < 0))) {
		json_decref(o);
		return bad(e, "metrics: not {\"metrics\": [rows], \"dropped\": n}");
	}
	*dropped = d != NULL ? (uint64_t)json_integer_value(d) : 0;
	*out = json_array();
	json_array_foreach (rows, i, row) {
		if ((obj = row_object(row)) == NULL || json_array_append_new(*out, obj) != 0) {
			json_decref(*out);
			*out = NULL;
			json_decref(o);
			return cfl_err_set(e, CFL_EPROTO,
			                   "metrics: row %zu is not [tag, step, value]", i);
		}
	}
	json_decref(o);
	return 0;
}
