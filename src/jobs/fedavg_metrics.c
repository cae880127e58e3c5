/* A FedAvg run's records: the metrics a client_api site's script sent with its round's answer
 * (kept per round in job.json's "metrics", shown by list_jobs ID --json) and metrics.csv. */
#include "channel.h"
#include "fedavg_int.h"

#include "cfl/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The most site metric rows a job keeps in all (job.json is written whole every round). */
#define JOB_ROWS_MAX 100000

void cfl__fedavg_take_rows(struct fedavg *f, struct part *p, const uint8_t *body, size_t len)
{
	struct cfl_err e = {0};
	json_t *rows = NULL;
	uint64_t dropped = 0;

	json_decref(p->rows);
	p->rows = NULL;
	p->dropped = 0;
	if (len == 0)
		return;
	if (cfl__rows_parse(body, len, &rows, &dropped, &e) != 0) {
		CFL_WARN("job %s: %s's metrics of round %d ignored: %s", f->jb->id, p->name,
		         f->jb->rounds_done + 1, e.msg);
		return;
	}
	p->rows = rows;
	p->dropped = dropped;
	if (dropped > 0)
		CFL_WARN("job %s: %s dropped %" PRIu64 " metrics of round %d (at most %d a round)",
		         f->jb->id, p->name, dropped, f->jb->rounds_done + 1, CFL__CHAN_ROUND_ROWS);
}

static size_t job_rows(const struct job *jb)
{
	size_t n = 0, i;
	json_t *m;

	json_array_foreach (jb->metrics, i, m)
		n += json_array_size(json_object_get(m, "site_metrics"));
	return n;
}

void cfl__fedavg_round_rows(struct fedavg *f, json_t *m)
{
	size_t have = job_rows(f->jb), i, k, lost = 0;
	json_t *all = json_array(), *row;

	for (i = 0; i < f->n; i++) {
		struct part *p = &f->parts[i];

		json_array_foreach (p->rows, k, row) {
			if (p->st != P_DONE)
				break;
			if (have >= JOB_ROWS_MAX) {
				lost++;
				continue;
			}
			json_object_set_new(row, "site", json_string(p->name));
			json_array_append(all, row);
			have++;
		}
		json_decref(p->rows);
		p->rows = NULL;
	}
	if (lost > 0)
		CFL_WARN("job %s: %zu site metrics of round %d not kept (a job keeps at most %d)",
		         f->jb->id, lost, f->jb->rounds_done, JOB_ROWS_MAX);
	if (json_array_size(all) > 0)
		json_object_set_new(m, "site_metrics", all);
	else
		json_decref(all);
}

/* A CSV field: quoted (quotes doubled) when it holds a comma or a quote. */
static void csv_field(FILE *fp, const char *s)
{
	if (strpbrk(s, ",\"") == NULL) {
		fputs(s, fp);
		return;
	}
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		if (*s == '"')
			fputc('"', fp);
		fputc(*s, fp);
	}
	fputc('"', fp);
}

/* The second table: round,site,tag,step,value, after an empty line. */
static void write_rows(FILE *fp, const struct job *jb)
{
	size_t i, k;
	json_t *m, *row;
	int head = 0;

	json_array_foreach (jb->metrics, i, m) {
		json_array_foreach (json_object_get(m, "site_metrics"), k, row) {
			if (!head)
				fputs("\nround,site,tag,step,value\n", fp);
			head = 1;
			fprintf(fp, "%d,", (int)json_integer_value(json_object_get(m, "round")));
			csv_field(fp, json_string_value(json_object_get(row, "site")));
			fputc(',', fp);
			csv_field(fp, json_string_value(json_object_get(row, "tag")));
			fprintf(fp, ",%" JSON_INTEGER_FORMAT ",%.9g\n",
			        json_integer_value(json_object_get(row, "step")),
			        json_number_value(json_object_get(row, "value")));
		}
	}
}

void cfl__fedavg_write_csv(const struct job *jb)
{
	char path[PATH_MAX];
	size_t i;
	json_t *m;
	FILE *fp;

	if (cfl__job_path(jb, "metrics.csv", path, sizeof(path)) != 0 ||
	    (fp = fopen(path, "w")) == NULL)
		return;
	fputs("round,clients,train_loss,test_accuracy,test_loss,seconds\n", fp);
	json_array_foreach (jb->metrics, i, m) {
		fprintf(fp, "%d,%d,%.6f,%.6f,%.6f,%.3f\n",
		        (int)json_integer_value(json_object_get(m, "round")),
		        (int)json_integer_value(json_object_get(m, "clients")),
		        json_real_value(json_object_get(m, "train_loss")),
		        json_real_value(json_object_get(m, "test_accuracy")),
		        json_real_value(json_object_get(m, "test_loss")),
		        json_real_value(json_object_get(m, "seconds")));
	}
	write_rows(fp, jb);
	fclose(fp);
}
