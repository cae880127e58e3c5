/* The C side of the Python safetensors tests (python/tests/test_safetensors.py):
 *   st_tool write OUT     writes a model with awkward names and metadata with cfl_model_save
 *   st_tool check FILE... prints, per file, OK or the error cfl_model_load gives (EPARSE...)
 * so the Python writer is compared byte for byte with the C writer, and the Python reader's
 * verdict on each malformed file with the C reader's. */
#include "cfl/err.h"
#include "cfl/model.h"

#include <stdio.h>
#include <string.h>

static const char *code_name(int rc)
{
	switch (rc) {
#define NAME(name, val, text) \
	case (val):           \
		return #name;
		CFL_ERRNO_MAP(NAME)
#undef NAME
	default:
		return "UNKNOWN";
	}
}

static int write_model(const char *path)
{
	static const char *const meta[] = {"round", "7", "format", "cfl", "z\"q\\\x01", "\xc3\xa9"};
	static const char *const names[] = {"fc.weight", "b\"q\\\n\t\x1f",     "\xc3\xa9t\xc3\xa9",
	                                    "A",         "\xf0\x9f\x98\x80/x", "scalar"};
	static const int64_t shapes[][3] = {{2, 3}, {4}, {1, 1, 2}, {0, 5}, {3}, {0}};
	static const int ndims[] = {2, 1, 3, 2, 1, 0};
	float vals[8] = {1.5f, -2.25f, 3e-39f, 65504.0f, -0.0f, 1e30f, 7.0f, 0.125f};
	struct cfl_model *m = NULL;
	struct cfl_err e = {0};
	int rc = cfl_model_new(&m);

	for (size_t i = 0; rc == 0 && i < sizeof(names) / sizeof(names[0]); i++)
		rc = cfl_model_add(m, names[i], shapes[i], ndims[i], vals);
	if (rc == 0)
		rc = cfl_model_save(m, path, meta, 3, &e);
	cfl_model_free(m);
	if (rc != 0)
		fprintf(stderr, "st_tool: %s: %s\n", code_name(rc), e.msg);
	return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "write") == 0)
		return write_model(argv[2]);
	if (argc >= 2 && strcmp(argv[1], "check") == 0) {
		for (int i = 2; i < argc; i++) {
			struct cfl_model *m = NULL;
			struct cfl_err e = {0};
			int rc = cfl_model_load(argv[i], (size_t)1 << 30, &m, &e);

			printf("%s\n", code_name(rc));
			cfl_model_free(m);
		}
		return 0;
	}
	fprintf(stderr, "usage: st_tool write OUT | st_tool check FILE...\n");
	return 2;
}
