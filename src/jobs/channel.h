/* The channel between a site and its client_api script (docs/jobs.md, "The client_api
 * executor's channel"): length-prefixed JSON messages over a socketpair, parsed with bounds
 * like any remote input; and the metric rows a site sends the server with a round's result.
 * No I/O here: the codec only (clientapi.c does the reading and writing). */
#ifndef CFL_JOBS_CHANNEL_H
#define CFL_JOBS_CHANNEL_H

#include "cfl/err.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CFL__CHAN_MSG_MAX    (1u << 20)   /* a message's JSON, 1..1 MiB */
#define CFL__CHAN_CHUNK      65536        /* the most cfl__chan_feed takes at once */
#define CFL__CHAN_TAG_MAX    128          /* a metric's tag, bytes */
#define CFL__CHAN_NAMES_MAX  64           /* keys of a result's "metrics" */
#define CFL__CHAN_ROUND_ROWS 10000        /* metric rows a site keeps per round */
#define CFL__CHAN_ROWS_BYTES (900u << 10) /* and their JSON's size, about */
#define CFL__CHAN_WEIGHT_MAX ((uint64_t)1 << 53)

enum cfl__chan_type { CFL__CHAN_HELLO = 1, CFL__CHAN_RESULT, CFL__CHAN_METRIC };

struct cfl__chan_metric {
	char tag[CFL__CHAN_TAG_MAX + 1];
	int64_t step; /* -1 for a value of a result's "metrics" */
	double value; /* finite */
};

/* One message from the script, checked. */
struct cfl__chan_msg {
	enum cfl__chan_type type;
	int version;   /* hello */
	int model;     /* result: the script wrote the result file */
	int diff;      /* result: params_type "DIFF" */
	int has_steps; /* result: meta.NUM_STEPS_CURRENT_ROUND given, in steps */
	uint64_t steps;
	size_t n_metrics; /* result: its "metrics", step -1 */
	struct cfl__chan_metric metrics[CFL__CHAN_NAMES_MAX];
	struct cfl__chan_metric metric; /* metric */
};

/* Decodes one message's JSON (n bytes, 1..CFL__CHAN_MSG_MAX): an object with a string "type"
 * of "hello" ({"version": int}), "result" ({"model": bool, "params_type": "FULL" | "DIFF",
 * "metrics": {name: finite number}, "meta": {"NUM_STEPS_CURRENT_ROUND": int 0..2^53, ...}};
 * model required, the others optional) or "metric" ({"tag": 1..128 bytes without control
 * characters, "value": finite number, "step": int >= 0, optional}). Other keys are ignored.
 * Returns 0, or CFL_EPROTO with the reason in `e`. */
int cfl__chan_decode(const uint8_t *p, size_t n, struct cfl__chan_msg *m, struct cfl_err *e);

/* The framing: 4 bytes big-endian length N, then N bytes. A reader collects what arrives. */
struct cfl__chan_reader {
	uint8_t *buf;
	size_t len, cap;
};
/* Adds n (at most CFL__CHAN_CHUNK) bytes; call cfl__chan_next until it returns 0 before the
 * next feed. Returns 0 or CFL_ENOMEM / CFL_EINVAL (a chunk too large). */
int cfl__chan_feed(struct cfl__chan_reader *r, const uint8_t *d, size_t n, struct cfl_err *e);
/* Takes the next whole message: 1 (in *m), 0 (more bytes needed), or CFL_EPROTO with `e` (a
 * length of 0 or over CFL__CHAN_MSG_MAX, or a bad message: the channel is then unusable). */
int cfl__chan_next(struct cfl__chan_reader *r, struct cfl__chan_msg *m, struct cfl_err *e);
void cfl__chan_reader_release(struct cfl__chan_reader *r);

/* A message to the script (`v` a JSON object) as framed bytes: *out (free()), *len. Returns 0,
 * CFL_ENOMEM or CFL_ETOOBIG. */
int cfl__chan_frame(json_t *v, uint8_t **out, size_t *len, struct cfl_err *e);

/* A round's metric rows, as the site keeps them and sends them to the server with the result:
 * {"metrics": [[tag, step, value], ...], "dropped": n}. */
struct cfl__rows {
	json_t *rows; /* array of [tag, step, value] */
	size_t bytes; /* about the JSON's size */
	uint64_t dropped;
};
/* Adds a row; past CFL__CHAN_ROUND_ROWS rows or CFL__CHAN_ROWS_BYTES, counts it as dropped.
 * Returns 1 for the first row dropped (the caller logs it once), else 0. */
int cfl__rows_add(struct cfl__rows *r, const struct cfl__chan_metric *m);
/* The body to send (new buffer, free()), or NULL when there is nothing to send. */
char *cfl__rows_body(const struct cfl__rows *r, size_t *len);
void cfl__rows_reset(struct cfl__rows *r);

/* The server's reading of such a body (at most CFL__CHAN_ROWS_BYTES + 64 KiB, at most
 * CFL__CHAN_ROUND_ROWS rows, each checked as cfl__chan_decode checks a metric, step >= -1):
 * a new array of {"tag", "step", "value"} objects in *out, *dropped the site's count.
 * Returns 0 or CFL_EPROTO with `e`. */
int cfl__rows_parse(const uint8_t *p, size_t n, json_t **out, uint64_t *dropped, struct cfl_err *e);

#endif
