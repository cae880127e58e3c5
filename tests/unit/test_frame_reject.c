/* Unit tests for the frame decoder (src/net/frame.c) on malformed input built byte by byte:
 * the fixed header, the header section, the body, and frames too big from the header alone.
 * The fixture is in frame_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "frame_fixture.h"

/* --- malformed input ------------------------------------------------------------------ */

/* Builds a frame byte by byte: fixed header fields as given, then `sect` and `body`. */
struct raw {
	uint8_t magic0, version, type;
	uint16_t flags;
	uint32_t reserved;
	uint64_t ref;
	uint8_t sect[BUFN];
	size_t hlen;
	const void *body;
	size_t body_len;
	long payload; /* -1: hlen + body_len */
};

static struct raw raw_of(uint8_t type)
{
	struct raw r;

	memset(&r, 0, sizeof(r));
	r.magic0 = 'C';
	r.version = 1;
	r.type = type;
	r.payload = -1;
	return r;
}

static size_t raw_emit(uint8_t *buf, size_t cap, const struct raw *r)
{
	struct cfl_writer w;

	cfl__wr_init(&w, buf, cap);
	cfl__wr_put_u8(&w, r->magic0);
	cfl__wr_put_u8(&w, 'F');
	cfl__wr_put_u8(&w, r->version);
	cfl__wr_put_u8(&w, r->type);
	cfl__wr_put_u16(&w, r->flags);
	cfl__wr_put_u16(&w, (uint16_t)r->hlen);
	cfl__wr_put_u32(&w,
	                r->payload >= 0 ? (uint32_t)r->payload : (uint32_t)(r->hlen + r->body_len));
	cfl__wr_put_u32(&w, r->reserved);
	cfl__wr_put_u64(&w, 42);
	cfl__wr_put_u64(&w, r->ref);
	cfl__wr_put_bytes(&w, r->sect, r->hlen);
	cfl__wr_put_bytes(&w, r->body, r->body_len);
	assert_int_equal(w.err, 0);
	return w.off;
}

/* Appends one header entry to r->sect (after a count the caller sets with sect_count). */
static void sect_add(struct raw *r, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct cfl_writer w;

	if (r->hlen == 0)
		r->hlen = 2;
	cfl__wr_init(&w, r->sect + r->hlen, sizeof(r->sect) - r->hlen);
	cfl__wr_put_u8(&w, (uint8_t)klen);
	cfl__wr_put_bytes(&w, key, klen);
	cfl__wr_put_u16(&w, (uint16_t)vlen);
	cfl__wr_put_bytes(&w, val, vlen);
	assert_int_equal(w.err, 0);
	r->hlen += w.off;
}

static void sect_count(struct raw *r, uint16_t n)
{
	if (r->hlen == 0)
		r->hlen = 2;
	r->sect[0] = (uint8_t)(n >> 8);
	r->sect[1] = (uint8_t)n;
}

/* Decodes `r` and checks the result is `want`: an error code, or 1 for "the whole frame". */
static void expect(const struct raw *r, int want)
{
	struct cfl_frame f;
	size_t n = raw_emit(big, sizeof(big), r);
	int rc = cfl_frame_decode(big, n, MAX, &f);

	if (want == 1)
		assert_int_equal(rc, (int)n);
	else
		assert_int_equal(rc, want);
}

/* A header-carrying frame with one good header, to mutate. */
static struct raw request(void)
{
	struct raw r = raw_of(CFL_FRAME_T_REQUEST);

	sect_count(&r, 1);
	sect_add(&r, "k", 1, "v", 1);
	return r;
}

static void test_reject_fixed_header(void **state)
{
	struct raw r;
	size_t frame_len;

	(void)state;
	expect(&(struct raw){0}, CFL_EPROTO); /* all zero: bad magic */
	r = request();
	expect(&r, 1);
	r.magic0 = 'X';
	expect(&r, CFL_EPROTO);
	r = request();
	expect(&r, 1);
	raw_emit(big, sizeof(big), &r);
	big[1] = 'G';
	assert_int_equal(cfl_frame_peek(big, CFL_FRAME_HEAD_LEN, MAX, &frame_len), CFL_EPROTO);
	r = request();
	r.version = 2;
	expect(&r, CFL_EPROTO);
	r.version = 0;
	expect(&r, CFL_EPROTO);
	r = request();
	r.type = 0;
	expect(&r, CFL_EPROTO);
	r.type = 10;
	expect(&r, CFL_EPROTO);
	r.type = 255;
	expect(&r, CFL_EPROTO);
	r = request();
	r.flags = 1 << 2; /* unknown bit */
	expect(&r, CFL_EPROTO);
	r.flags = 0x8000;
	expect(&r, CFL_EPROTO);
	r.flags = CFL_FRAME_F_ERROR; /* known bit, wrong type */
	expect(&r, CFL_EPROTO);
	r = request();
	r.reserved = 1;
	expect(&r, CFL_EPROTO);
	r = request();
	r.ref = 9; /* REQUEST has no ref */
	expect(&r, CFL_EPROTO);
	/* only the fixed header is needed to see an error: peek agrees */
	r = request();
	r.version = 2;
	raw_emit(big, sizeof(big), &r);
	assert_int_equal(cfl_frame_peek(big, CFL_FRAME_HEAD_LEN, MAX, &frame_len), CFL_EPROTO);
}

static void test_reject_header_section(void **state)
{
	char key65[65], key64[64];
	static uint8_t v8193[8193];
	struct raw r;
	int i;

	(void)state;
	memset(key65, 'k', sizeof(key65));
	memset(key64, 'k', sizeof(key64));
	memset(v8193, 'v', sizeof(v8193));

	/* the section length must match the entries exactly */
	r = request();
	r.hlen -= 1;
	expect(&r, CFL_EPROTO);
	r = request();
	r.hlen += 1; /* one stray byte after the last entry */
	expect(&r, CFL_EPROTO);
	r = request();
	sect_count(&r, 2); /* counts more entries than there are */
	expect(&r, CFL_EPROTO);
	r = request();
	r.payload = (long)r.hlen - 1; /* section longer than the payload */
	expect(&r, CFL_EPROTO);
	r = raw_of(CFL_FRAME_T_REQUEST);
	expect(&r, CFL_EPROTO); /* no section at all: REQUEST needs at least the count */
	sect_count(&r, 0);
	expect(&r, 1);

	/* keys */
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 1);
	sect_add(&r, key64, 64, "v", 1);
	expect(&r, 1);
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 1);
	sect_add(&r, key65, 65, "v", 1);
	expect(&r, CFL_EPROTO);
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 1);
	sect_add(&r, "", 0, "v", 1);
	expect(&r, CFL_EPROTO);
	for (i = 0; i < 5; i++) {
		static const char *bad[] = {"Key", "a b", "a/b", "a:b", "\xc3\xa9"};

		r = raw_of(CFL_FRAME_T_REQUEST);
		sect_count(&r, 1);
		sect_add(&r, bad[i], strlen(bad[i]), "v", 1);
		expect(&r, CFL_EPROTO);
	}
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 1);
	sect_add(&r, "a-z.0_9", 7, "v", 1);
	expect(&r, 1);

	/* values */
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 1);
	sect_add(&r, "k", 1, v8193, 8192);
	expect(&r, 1);
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 1);
	sect_add(&r, "k", 1, v8193, 8193);
	expect(&r, CFL_EPROTO);
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 1);
	sect_add(&r, "k", 1, "a\0b", 3);
	expect(&r, CFL_EPROTO);

	/* duplicates and counts */
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 3);
	sect_add(&r, "a", 1, "1", 1);
	sect_add(&r, "b", 1, "2", 1);
	sect_add(&r, "a", 1, "3", 1);
	expect(&r, CFL_EPROTO);
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 64);
	for (i = 0; i < 64; i++) {
		char k[3] = {(char)('a' + i / 26), (char)('a' + i % 26), 0};

		sect_add(&r, k, 2, "", 0);
	}
	expect(&r, 1);
	sect_count(&r, 65);
	sect_add(&r, "zz", 2, "", 0);
	expect(&r, CFL_EPROTO);

	/* no section outside REQUEST / REPLY / ONEWAY, not even an empty count */
	for (i = CFL_FRAME_T_CHUNK; i <= CFL_FRAME_T_CANCEL; i++) {
		r = raw_of((uint8_t)i);
		r.ref = i == CFL_FRAME_T_CHUNK || i == CFL_FRAME_T_WINDOW ||
		        i == CFL_FRAME_T_CANCEL;
		if (i == CFL_FRAME_T_WINDOW) {
			r.body = credit;
			r.body_len = sizeof(credit);
		}
		expect(&r, 1);
		sect_count(&r, 0);
		expect(&r, CFL_EPROTO);
		sect_count(&r, 1);
		sect_add(&r, "k", 1, "v", 1);
		expect(&r, CFL_EPROTO);
	}
}

static void test_reject_body(void **state)
{
	static const char *bad_utf8[] = {
	        "\xff",     "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",         "\xf4\x90\x80\x80",
	        "\xe2\x82", "\x80",     "a\xc3(",       "\xf8\x88\x80\x80\x80", "\xc1\xbf",
	};
	struct raw r;
	size_t i;

	(void)state;
	r = raw_of(CFL_FRAME_T_WINDOW);
	r.ref = 1;
	r.body = credit;
	r.body_len = 8;
	expect(&r, 1);
	r.body_len = 7;
	expect(&r, CFL_EPROTO);
	r.body = "\0\0\0\0\0\0\0\0\0";
	r.body_len = 8; /* a grant of nothing */
	expect(&r, CFL_EPROTO);
	r.body_len = 9;
	expect(&r, CFL_EPROTO);

	r = raw_of(CFL_FRAME_T_CANCEL);
	r.ref = 1;
	expect(&r, 1);
	r.body = "x";
	r.body_len = 1;
	expect(&r, CFL_EPROTO);

	r = raw_of(CFL_FRAME_T_PING);
	r.body = "123456789";
	r.body_len = 9;
	expect(&r, CFL_EPROTO);
	r.body_len = 0;
	expect(&r, 1);

	r = raw_of(CFL_FRAME_T_CHUNK);
	r.ref = 1;
	r.flags = CFL_FRAME_F_MORE; /* an empty chunk that promises more */
	expect(&r, CFL_EPROTO);
	r.flags = 0; /* an empty last chunk is fine */
	expect(&r, 1);

	r = raw_of(CFL_FRAME_T_REPLY);
	r.ref = 1;
	r.flags = CFL_FRAME_F_ERROR;
	sect_count(&r, 1);
	sect_add(&r, "reason", 6, "x", 1);
	expect(&r, CFL_EPROTO); /* ERROR without a status */

	r = raw_of(CFL_FRAME_T_GOAWAY);
	r.body = "\xe2\x98\x83 ok";
	r.body_len = 6;
	expect(&r, 1);
	for (i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		r.body = bad_utf8[i];
		r.body_len = strlen(bad_utf8[i]);
		expect(&r, CFL_EPROTO);
	}
	r.body = "a\0b";
	r.body_len = 3;
	expect(&r, CFL_EPROTO);
}

static void test_too_big_from_header_alone(void **state)
{
	struct raw r = raw_of(CFL_FRAME_T_ONEWAY);
	struct cfl_frame f;
	size_t frame_len = 0;

	(void)state;
	sect_count(&r, 0);
	r.payload = CFL_FRAME_MAX_PAYLOAD_PRELOGIN + 1;
	raw_emit(big, sizeof(big), &r);
	/* only the 32 header bytes are supplied: the verdict comes before any body */
	assert_int_equal(
	        cfl_frame_peek(big, CFL_FRAME_HEAD_LEN, CFL_FRAME_MAX_PAYLOAD_PRELOGIN, &frame_len),
	        CFL_ETOOBIG);
	assert_int_equal(
	        cfl_frame_decode(big, CFL_FRAME_HEAD_LEN, CFL_FRAME_MAX_PAYLOAD_PRELOGIN, &f),
	        CFL_ETOOBIG);
	/* exactly at the limit is fine (and incomplete here) */
	r.payload = CFL_FRAME_MAX_PAYLOAD_PRELOGIN;
	raw_emit(big, sizeof(big), &r);
	assert_int_equal(
	        cfl_frame_peek(big, CFL_FRAME_HEAD_LEN, CFL_FRAME_MAX_PAYLOAD_PRELOGIN, &frame_len),
	        0);
	assert_int_equal(frame_len, CFL_FRAME_HEAD_LEN + CFL_FRAME_MAX_PAYLOAD_PRELOGIN);
	assert_int_equal(
	        cfl_frame_decode(big, CFL_FRAME_HEAD_LEN, CFL_FRAME_MAX_PAYLOAD_PRELOGIN, &f), 0);
	/* whatever the caller allows, a frame must fit the int decode returns */
	r.payload = 0xffffffff;
	raw_emit(big, sizeof(big), &r);
	assert_int_equal(cfl_frame_peek(big, CFL_FRAME_HEAD_LEN, SIZE_MAX, &frame_len),
	                 CFL_ETOOBIG);
	assert_int_equal(cfl_frame_peek(big, CFL_FRAME_HEAD_LEN, SIZE_MAX, NULL), CFL_EINVAL);
	assert_int_equal(cfl_frame_decode(big, CFL_FRAME_HEAD_LEN, SIZE_MAX, NULL), CFL_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_reject_fixed_header),
	        cmocka_unit_test(test_reject_header_section),
	        cmocka_unit_test(test_reject_body),
	        cmocka_unit_test(test_too_big_from_header_alone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
