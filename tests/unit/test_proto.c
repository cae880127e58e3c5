/* Unit tests for the protocol's vocabulary (include/cfl/proto.h): every word is a valid key or
 * topic, named once; the constants, their lists and docs/protocol.md §5 agree; CFL_HDR counts
 * the key's length. The files are read from $CFL_SRC, which ctest sets to the source folder. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "src_tree.h"

#include "cfl/proto.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct word {
	const char *name; /* the constant, e.g. "CFL_TOPIC_CHALLENGE" */
	const char *text; /* its value, e.g. "challenge" */
};

/* All of them: the topics, then the keys. */
#define TOPIC(n) {"CFL_TOPIC_" #n, CFL_TOPIC_##n},
#define KEY(n)   {"CFL_KEY_" #n, CFL_KEY_##n},
#define ONE(n)   +1
static const struct word words[] = {CFL_TOPICS(TOPIC) CFL_KEYS(KEY)};
enum { N_TOPICS = 0 CFL_TOPICS(ONE), N_KEYS = 0 CFL_KEYS(ONE), N_WORDS = N_TOPICS + N_KEYS };
#undef TOPIC
#undef KEY
#undef ONE

static const struct word *const topics = words, *const keys = words + N_TOPICS;

static FILE *open_src(const char *rel)
{
	char path[PATH_MAX];
	FILE *fp;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", src_dir(), rel) >= sizeof(path))
		fail_msg("path too long: '%s/%s'", src_dir(), rel);
	fp = fopen(path, "r");
	if (fp == NULL)
		fail_msg("cannot read '%s'", path);
	return fp;
}

/* The index in words[] of the constant `name`, or -1. */
static int find(const char *name)
{
	for (int i = 0; i < N_WORDS; i++) {
		if (strcmp(words[i].name, name) == 0)
			return i;
	}
	return -1;
}

static void check_unique(const struct word *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = i + 1; j < n; j++) {
			if (strcmp(w[i].text, w[j].text) == 0 || strcmp(w[i].name, w[j].name) == 0)
				fail_msg("'%s' is in the vocabulary twice (%s, %s)", w[i].text,
				         w[i].name, w[j].name);
		}
	}
}

/* protocol.md 1.4: 1-64 bytes of a-z, 0-9, '_', '.', '-'. Topics are values, but they name
 * handlers: the same alphabet, and short enough for the hub's table. */
static void check_alphabet(const struct word *w, size_t n, size_t max)
{
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(w[i].text);

		if (len == 0 || len > max ||
		    strspn(w[i].text, "abcdefghijklmnopqrstuvwxyz0123456789_.-") != len)
			fail_msg("%s '%s' is not a valid word", w[i].name, w[i].text);
	}
}

static void test_words_valid_and_unique(void **state)
{
	(void)state;
	assert_true(N_TOPICS > 0 && N_KEYS > 0);
	check_unique(topics, N_TOPICS);
	check_unique(keys, N_KEYS);
	check_alphabet(keys, N_KEYS, CFL_FRAME_MAX_KEY);
	check_alphabet(topics, N_TOPICS, 63);
	/* A topic inside the application's namespace would be routed between sites. */
	for (size_t i = 0; i < N_TOPICS; i++)
		assert_true(strncmp(topics[i].text, CFL_TOPIC_APP_PREFIX,
		                    strlen(CFL_TOPIC_APP_PREFIX)) != 0);
	assert_string_equal(CFL_KEY_STATUS, CFL_FRAME_KEY_STATUS);
	assert_string_equal(CFL_KEY_BODY_LENGTH, CFL_FRAME_KEY_BODY_LENGTH);
}

/* Every `#define CFL_TOPIC_X` / `CFL_KEY_X` of proto.h is in CFL_TOPICS / CFL_KEYS: a word
 * defined but left out of its list would escape the checks here. */
static void test_every_constant_listed(void **state)
{
	FILE *fp = open_src("include/cfl/proto.h");
	char line[512], name[128];
	size_t seen = 0;

	(void)state;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "#define %127[A-Z0-9_]", name) != 1 ||
		    (strncmp(name, "CFL_TOPIC_", 10) != 0 && strncmp(name, "CFL_KEY_", 8) != 0) ||
		    strcmp(name, "CFL_TOPIC_APP_PREFIX") == 0)
			continue;
		if (find(name) < 0)
			fail_msg("%s is defined in proto.h but not in CFL_TOPICS or CFL_KEYS",
			         name);
		seen++;
	}
	fclose(fp);
	assert_int_equal(seen, N_WORDS);
}

/* The first two cells of a table row, "| `word` | `CONSTANT` | ...", into text and name (128
 * bytes each), or 0. */
static int doc_row(const char *line, char *text, char *name)
{
	return sscanf(line, "| `%127[^`]` | `%127[^`]` |", text, name) == 2;
}

/* docs/protocol.md §5 lists exactly the words of proto.h, each with its constant. */
static void test_doc_agrees(void **state)
{
	FILE *fp = open_src("docs/protocol.md");
	char line[1024], text[128], name[128], seen[N_WORDS] = {0};
	int in_section = 0;
	size_t rows = 0;

	(void)state;
	while (fgets(line, sizeof(line), fp) != NULL) {
		int i;

		if (strncmp(line, "## ", 3) == 0)
			in_section = strncmp(line, "## 5. Vocabulary", 16) == 0;
		if (!in_section || !doc_row(line, text, name))
			continue;
		if ((i = find(name)) < 0)
			fail_msg("protocol.md §5 lists `%s` (%s), which proto.h does not have",
			         text, name);
		if (strcmp(words[i].text, text) != 0)
			fail_msg("protocol.md §5 says %s is `%s`; proto.h says `%s`", name, text,
			         words[i].text);
		if (seen[i]++)
			fail_msg("protocol.md §5 lists `%s` twice", text);
		rows++;
	}
	fclose(fp);
	/* Each row named a different word, so equal counts mean none is missing. */
	if (rows != N_WORDS)
		fail_msg("protocol.md §5 has %zu words, proto.h %d", rows, (int)N_WORDS);
}

static void test_hdr_counts_the_key(void **state)
{
	const char *v = "site-1";
	struct cfl_header h[2] = {CFL_HDR(CFL_KEY_CLIENT_NAME, v),
	                          CFL_HDR_BYTES(CFL_KEY_DST, "abc", 2)};
	struct cfl_frame f, g;
	uint8_t buf[256];
	int n;

	(void)state;
	assert_int_equal(h[0].key_len, strlen("client_name"));
	assert_memory_equal(h[0].key, "client_name", h[0].key_len);
	assert_ptr_equal(h[0].val, v);
	assert_int_equal(h[0].val_len, 6);
	assert_int_equal(h[1].key_len, 3);
	assert_int_equal(h[1].val_len, 2);
	/* What it builds is a header the codec takes and finds again. */
	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_ONEWAY;
	f.id = 1;
	f.headers[0] = h[0];
	f.headers[1] = h[1];
	f.n_headers = 2;
	n = cfl_frame_encode(buf, sizeof(buf), &f);
	assert_true(n > 0);
	assert_int_equal(cfl_frame_decode(buf, (size_t)n, sizeof(buf), &g), n);
	assert_non_null(cfl_frame_header(&g, CFL_KEY_CLIENT_NAME));
	assert_int_equal(cfl_frame_header(&g, CFL_KEY_DST)->val_len, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_words_valid_and_unique),
	        cmocka_unit_test(test_every_constant_listed),
	        cmocka_unit_test(test_doc_agrees),
	        cmocka_unit_test(test_hdr_counts_the_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
