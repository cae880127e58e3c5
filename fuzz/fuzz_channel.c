/* libFuzzer target for the client_api channel (src/jobs/channel.c): what a job's script
 * writes on its channel, fed to the framing reader in chunks of sizes drawn from the input;
 * and the metric rows a site sends the server. The first byte chooses: even, the channel;
 * odd, the rows. A message that decodes must hold what the codec promises (finite values,
 * tags within bounds), or the target aborts. */
#include "jobs/channel.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static void check_metric(const struct cfl__chan_metric *m)
{
	size_t n = strlen(m->tag);

	check(n >= 1 && n <= CFL__CHAN_TAG_MAX && isfinite(m->value) && m->step >= -1);
}

static void channel(const uint8_t *d, size_t n)
{
	struct cfl__chan_reader r = {0};
	struct cfl__chan_msg *m = malloc(sizeof(*m));
	struct cfl_err e = {0};
	size_t off = 0;
	int rc = 0;

	if (m == NULL)
		return;
	while (off < n && rc >= 0) {
		size_t k = 1 + d[off] % 97;

		off++;
		if (k > n - off)
			k = n - off;
		if (cfl__chan_feed(&r, d + off, k, &e) != 0)
			break;
		off += k;
		while ((rc = cfl__chan_next(&r, m, &e)) == 1) {
			check(m->type >= CFL__CHAN_HELLO && m->type <= CFL__CHAN_METRIC);
			check(m->n_metrics <= CFL__CHAN_NAMES_MAX);
			for (size_t i = 0; i < m->n_metrics; i++)
				check_metric(&m->metrics[i]);
			if (m->type == CFL__CHAN_METRIC)
				check_metric(&m->metric);
			check(!m->has_steps || m->steps <= CFL__CHAN_WEIGHT_MAX);
		}
	}
	/* the whole input as one message, too */
	if (n >= 1 && n <= CFL__CHAN_MSG_MAX)
		cfl__chan_decode(d, n, m, &e);
	cfl__chan_reader_release(&r);
	free(m);
}

static void rows(const uint8_t *d, size_t n)
{
	struct cfl_err e = {0};
	uint64_t dropped = 0;
	json_t *out = NULL, *row;
	size_t i;

	if (cfl__rows_parse(d, n, &out, &dropped, &e) != 0) {
		check(out == NULL);
		return;
	}
	check(json_array_size(out) <= CFL__CHAN_ROUND_ROWS);
	json_array_foreach (out, i, row)
		check(isfinite(json_number_value(json_object_get(row, "value"))));
	json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] % 2 == 0)
		channel(data + 1, size - 1);
	else
		rows(data + 1, size - 1);
	return 0;
}
