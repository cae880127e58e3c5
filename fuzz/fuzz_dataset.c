/* libFuzzer target for the dataset parsers (IDX images + labels, the digits CSV): outside input
 * read from disk. The first byte picks the parser; for IDX the second byte says where the
 * images end and the labels begin. */
#include "cfl/dataset.h"
#include "cfl/log.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfl_dataset d = {0};
	struct cfl_err e = {0};

	cfl_log_set_level(CFL_LOG_ERROR);
	if (size < 2)
		return 0;
	if (data[0] & 1) {
		size_t cut = 2 + (size - 2) * data[1] / 255;

		if (cfl_dataset_parse_idx(data + 2, cut - 2, data + cut, size - cut, &d, &e) == 0 &&
		    (d.n == 0 || d.x == NULL || d.y == NULL))
			__builtin_trap();
	} else if (cfl_dataset_parse_digits((const char *)data + 1, size - 1, &d, &e) == 0 &&
	           d.dim != 64) {
		__builtin_trap();
	}
	cfl_dataset_release(&d);
	return 0;
}
