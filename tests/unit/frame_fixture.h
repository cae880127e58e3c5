/* Shared fixture of the frame codec tests (test_frame_codec.c, test_frame_reject.c;
 * src/net/frame.c, src/util/reader.h): frames built field by field, a sample of each type,
 * encoding into a buffer, and the comparison of two frames.
 *
 * Everything is static inline so that each test program takes what it uses. */
#ifndef CFL_TEST_FRAME_FIXTURE_H
#define CFL_TEST_FRAME_FIXTURE_H

#include "cfl/err.h"
#include "cfl/frame.h"
#include "util/reader.h"

#include <stdlib.h>
#include <string.h>

#define MAX  CFL_FRAME_MAX_PAYLOAD
#define BUFN (CFL_FRAME_HEAD_LEN + 2 + CFL_FRAME_MAX_HEADERS * (3 + CFL_FRAME_MAX_KEY) + 9000)

static const uint8_t credit[8] = {0, 0, 0, 0, 0, 0x80, 0, 0}; /* 8 MiB */
static const char goodbye[] = "shutting down \xe2\x80\x94 bye \xf0\x9f\x91\x8b";

static inline void set_header(struct cfl_frame *f, const char *key, const char *val)
{
	struct cfl_header *h = &f->headers[f->n_headers++];

	h->key = key;
	h->key_len = strlen(key);
	h->val = (const uint8_t *)val;
	h->val_len = strlen(val);
}

static inline void set_body(struct cfl_frame *f, const void *body, size_t len)
{
	f->body = body;
	f->body_len = len;
}

static inline struct cfl_frame make(uint8_t type, uint16_t flags, uint64_t id, uint64_t ref)
{
	struct cfl_frame f;

	memset(&f, 0, sizeof(f));
	f.type = type;
	f.flags = flags;
	f.id = id;
	f.ref = ref;
	return f;
}

/* A valid frame of each type. */
static inline struct cfl_frame sample(uint8_t type)
{
	struct cfl_frame f = make(type, 0, 7, 0);

	switch (type) {
	case CFL_FRAME_T_REQUEST:
		set_header(&f, "topic", "train");
		set_header(&f, "client_name", "site-1");
		set_header(&f, "empty", "");
		set_body(&f, "weights", 7);
		break;
	case CFL_FRAME_T_REPLY:
		f = make(type, CFL_FRAME_F_ERROR, 8, 7);
		set_header(&f, "status", "unauthenticated");
		break;
	case CFL_FRAME_T_ONEWAY:
		f.flags = CFL_FRAME_F_MORE;
		set_header(&f, "body-length", "3000000");
		set_body(&f, "abc", 3);
		break;
	case CFL_FRAME_T_CHUNK:
		f.ref = 7;
		set_body(&f, "\0\1\2\3", 4);
		break;
	case CFL_FRAME_T_WINDOW:
		f.ref = 7;
		set_body(&f, credit, 8);
		break;
	case CFL_FRAME_T_PING:
	case CFL_FRAME_T_PONG:
		set_body(&f, "12345678", 8);
		break;
	case CFL_FRAME_T_GOAWAY:
		set_body(&f, goodbye, strlen(goodbye));
		break;
	case CFL_FRAME_T_CANCEL:
		f.ref = 7;
		break;
	default:
		fail();
	}
	return f;
}

static inline size_t encode(uint8_t *buf, size_t cap, const struct cfl_frame *f)
{
	int n = cfl_frame_encode(buf, cap, f);

	assert_true(n >= CFL_FRAME_HEAD_LEN);
	assert_int_equal((size_t)n, cfl_frame_encoded_size(f));
	return (size_t)n;
}

static inline void assert_same(const struct cfl_frame *a, const struct cfl_frame *b)
{
	size_t i;

	assert_int_equal(a->type, b->type);
	assert_int_equal(a->flags, b->flags);
	assert_true(a->id == b->id);
	assert_true(a->ref == b->ref);
	assert_int_equal(a->n_headers, b->n_headers);
	for (i = 0; i < a->n_headers; i++) {
		assert_int_equal(a->headers[i].key_len, b->headers[i].key_len);
		assert_memory_equal(a->headers[i].key, b->headers[i].key, a->headers[i].key_len);
		assert_int_equal(a->headers[i].val_len, b->headers[i].val_len);
		if (a->headers[i].val_len > 0)
			assert_memory_equal(a->headers[i].val, b->headers[i].val,
			                    a->headers[i].val_len);
	}
	assert_int_equal(a->body_len, b->body_len);
	if (a->body_len > 0)
		assert_memory_equal(a->body, b->body, a->body_len);
}

/* Room for the largest frame a test builds (and a source of bytes to write). */
static uint8_t big[BUFN];

#endif
