/* The client_api channel's codec (src/jobs/channel.c): framing bounds, strict types, the
 * metric rows' bounds both ways. */
#include "jobs/channel.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int decode(const char *json, struct cfl__chan_msg *m, struct cfl_err *e)
{
	return cfl__chan_decode((const uint8_t *)json, strlen(json), m, e);
}

static void good_messages(void **state)
{
	struct cfl__chan_msg m;
	struct cfl_err e = {0};

	(void)state;
	assert_int_equal(decode("{\"type\":\"hello\",\"version\":1}", &m, &e), 0);
	assert_int_equal(m.type, CFL__CHAN_HELLO);
	assert_int_equal(decode("{\"type\":\"result\",\"model\":true,\"params_type\":\"DIFF\","
	                        "\"metrics\":{\"acc\":0.5,\"n\":3},\"meta\":"
	                        "{\"NUM_STEPS_CURRENT_ROUND\":7,\"other\":[1]},\"extra\":null}",
	                        &m, &e),
	                 0);
	assert_int_equal(m.type, CFL__CHAN_RESULT);
	assert_true(m.model && m.diff && m.has_steps);
	assert_int_equal(m.steps, 7);
	assert_int_equal(m.n_metrics, 2);
	assert_int_equal(m.metrics[0].step, -1);
	assert_int_equal(
	        decode("{\"type\":\"metric\",\"tag\":\"main/a\",\"value\":2,\"step\":3}", &m, &e),
	        0);
	assert_string_equal(m.metric.tag, "main/a");
	assert_int_equal(m.metric.step, 3);
	assert_true(m.metric.value == 2.0);
}

static void bad_types(void **state)
{
	static const char *const bad[] = {
	        "[]",
	        "{\"type\":1}",
	        "{\"type\":\"nope\"}",
	        "{\"type\":\"hello\"}",
	        "{\"type\":\"hello\",\"version\":2}",
	        "{\"type\":\"hello\",\"version\":\"1\"}",
	        "{\"type\":\"result\"}",
	        "{\"type\":\"result\",\"model\":1}",
	        "{\"type\":\"result\",\"model\":true,\"params_type\":\"HALF\"}",
	        "{\"type\":\"result\",\"model\":true,\"metrics\":[1]}",
	        "{\"type\":\"result\",\"model\":true,\"metrics\":{\"a\":\"x\"}}",
	        "{\"type\":\"result\",\"model\":true,\"meta\":{\"NUM_STEPS_CURRENT_ROUND\":-1}}",
	        "{\"type\":\"result\",\"model\":true,\"meta\":{\"NUM_STEPS_CURRENT_ROUND\":1.5}}",
	        ("{\"type\":\"result\",\"model\":true,\"meta\":{\"NUM_STEPS_CURRENT_ROUND\":"
	         "9007199254740993}}"),
	        "{\"type\":\"metric\",\"tag\":\"\",\"value\":1}",
	        "{\"type\":\"metric\",\"tag\":\"a\\nb\",\"value\":1}",
	        "{\"type\":\"metric\",\"tag\":\"a\",\"value\":1e999}",
	        "{\"type\":\"metric\",\"tag\":\"a\",\"value\":NaN}",
	        "{\"type\":\"metric\",\"tag\":\"a\",\"value\":1,\"step\":-2}",
	        "{\"type\":\"metric\",\"tag\":\"a\",\"value\":1,\"step\":1.0}",
	        "{\"type\":\"hello\",\"version\":1,\"version\":1}",
	};
	struct cfl__chan_msg m;
	struct cfl_err e = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(decode(bad[i], &m, &e), CFL_EPROTO);
}

static void framing(void **state)
{
	struct cfl__chan_reader r = {0};
	struct cfl__chan_msg m;
	struct cfl_err e = {0};
	json_t *v = json_pack("{s:s, s:i}", "type", "hello", "version", 1);
	uint8_t *f = NULL, zero[4] = {0}, big[4] = {0x00, 0x10, 0x00, 0x01};
	size_t len = 0;

	(void)state;
	assert_int_equal(cfl__chan_frame(v, &f, &len, &e), 0);
	json_decref(v);
	/* byte by byte: whole only at the end */
	for (size_t i = 0; i < len; i++) {
		assert_int_equal(cfl__chan_feed(&r, f + i, 1, &e), 0);
		assert_int_equal(cfl__chan_next(&r, &m, &e), i + 1 == len ? 1 : 0);
	}
	assert_int_equal(r.len, 0);
	free(f);
	assert_int_equal(cfl__chan_feed(&r, zero, 4, &e), 0);
	assert_int_equal(cfl__chan_next(&r, &m, &e), CFL_EPROTO);
	cfl__chan_reader_release(&r);
	/* 1 MiB + 1 is refused from its length alone */
	assert_int_equal(cfl__chan_feed(&r, big, 4, &e), 0);
	assert_int_equal(cfl__chan_next(&r, &m, &e), CFL_EPROTO);
	cfl__chan_reader_release(&r);
	assert_int_equal(cfl__chan_feed(&r, big, CFL__CHAN_CHUNK + 1, &e), CFL_EINVAL);
	cfl__chan_reader_release(&r);
}

static void rows(void **state)
{
	struct cfl__rows r = {0};
	struct cfl__chan_metric m = {.tag = "loss", .step = 1, .value = 0.25};
	struct cfl_err e = {0};
	json_t *out = NULL;
	uint64_t dropped = 0;
	size_t len = 0;
	char *body;
	int first = 0;

	(void)state;
	for (int i = 0; i < CFL__CHAN_ROUND_ROWS + 5; i++)
		first += cfl__rows_add(&r, &m);
	assert_int_equal(first, 1);
	assert_int_equal(r.dropped, 5);
	body = cfl__rows_body(&r, &len);
	assert_non_null(body);
	assert_int_equal(cfl__rows_parse((const uint8_t *)body, len, &out, &dropped, &e), 0);
	assert_int_equal(json_array_size(out), CFL__CHAN_ROUND_ROWS);
	assert_int_equal(dropped, 5);
	json_decref(out);
	free(body);
	cfl__rows_reset(&r);
	assert_null(cfl__rows_body(&r, &len));
	assert_int_equal(cfl__rows_parse((const uint8_t *)"{\"metrics\":[[\"a\",-2,1]]}", 24, &out,
	                                 &dropped, &e),
	                 CFL_EPROTO);
	assert_int_equal(cfl__rows_parse((const uint8_t *)"{\"metrics\":[[\"a\",1]]}", 21, &out,
	                                 &dropped, &e),
	                 CFL_EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(good_messages),
	        cmocka_unit_test(bad_types),
	        cmocka_unit_test(framing),
	        cmocka_unit_test(rows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
