/* The server's replies as a person reads them: tables with aligned columns and local times
 * ('YYYY-MM-DD HH:MM:SS'), like FLARE's console. With --json the reply is printed as it came
 * (scripts parse that; tests/integration and scripts/demo.sh do). */
#include "admin.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COLS_MAX 8

/* --- a table: rows of text cells, printed with each column as wide as its widest cell --------- */

struct table {
	size_t ncols, nrows, cap;
	char **cells; /* nrows * ncols copies */
	int failed;
};

static void table_row(struct table *t, const char *const *cells)
{
	if (t->failed)
		return;
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **p = realloc(t->cells, cap * t->ncols * sizeof(*p));

		if (p == NULL) {
			t->failed = 1;
			return;
		}
		t->cells = p;
		t->cap = cap;
	}
	for (size_t i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] = strdup(cells[i] != NULL ? cells[i] : "-");
	t->nrows++;
}

/* Prints the table and frees it. */
static void table_print(struct table *t)
{
	size_t w[COLS_MAX] = {0};

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t i = 0; i < t->ncols; i++) {
			const char *s = t->cells[r * t->ncols + i];
			size_t n = s != NULL ? strlen(s) : 0;

			w[i] = n > w[i] ? n : w[i];
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t i = 0; i < t->ncols; i++) {
			const char *s = t->cells[r * t->ncols + i];

			if (i + 1 < t->ncols)
				printf("%-*s  ", (int)w[i], s != NULL ? s : "?");
			else
				printf("%s\n", s != NULL ? s : "?");
		}
	}
	for (size_t k = 0; k < t->nrows * t->ncols; k++)
		free(t->cells[k]);
	free(t->cells);
	if (t->failed)
		printf("(out of memory: rows left out)\n");
}

/* --- values ---------------------------------------------------------------------------------- */

static void local_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || localtime_r(&tt, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, size, "-");
}

static int leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* The server writes times as UTC "YYYY-MM-DDTHH:MM:SSZ"; the console shows local time. */
static void utc_to_local(const char *iso, char *buf, size_t size)
{
	static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
	int y, mo, d, h, mi, s;
	int64_t days = 0;

	if (iso == NULL || sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2dZ", &y, &mo, &d, &h, &mi, &s) != 6 ||
	    y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31) {
		snprintf(buf, size, "%s", iso != NULL ? iso : "-");
		return;
	}
	for (int k = 1970; k < y; k++)
		days += leap(k) ? 366 : 365;
	days += before[mo - 1] + (mo > 2 && leap(y)) + d - 1;
	local_time(((days * 24 + h) * 60 + mi) * 60 + s, buf, size);
}

static void duration(int64_t secs, char *buf, size_t size)
{
	if (secs < 0)
		snprintf(buf, size, "-");
	else if (secs >= 86400)
		snprintf(buf, size, "%" PRId64 "d %" PRId64 ":%02d:%02d", secs / 86400,
		         secs % 86400 / 3600, (int)(secs % 3600 / 60), (int)(secs % 60));
	else
		snprintf(buf, size, "%" PRId64 ":%02d:%02d", secs / 3600, (int)(secs % 3600 / 60),
		         (int)(secs % 60));
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int64_t num(json_t *o, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(o, key));
}

/* --- check_status ----------------------------------------------------------------------------- */

/* The counts under the table (servers before 2026-12 sent the rows only): how many of how
 * many, and the command for the next page. */
static void show_client_counts(json_t *res, size_t listed)
{
	int64_t total = num(res, "total"), matched = num(res, "matched");
	int64_t from = num(res, "from");
	json_t *next = json_object_get(res, "next");

	if (json_object_get(res, "total") == NULL)
		return;
	printf("%" PRId64 " client%s logged in: %" PRId64 " connected, %" PRId64 " not", total,
	       total == 1 ? "" : "s", num(res, "connected"), num(res, "disconnected"));
	if (matched != total)
		printf("; %" PRId64 " match", matched);
	if ((int64_t)listed < matched)
		printf("; rows %" PRId64 "-%" PRId64 " shown", from + 1, from + (int64_t)listed);
	printf("\n");
	if (json_is_integer(next))
		printf("next page: check_status client %s %" PRId64 "\n",
		       str(res, "pattern") != NULL ? str(res, "pattern") : "*",
		       (int64_t)json_integer_value(next));
}

static void show_clients(json_t *res)
{
	struct table t = {.ncols = 7};
	const char *head[] = {"name",           "address",      "security",   "connected",
	                      "last heartbeat", "token expiry", "cert expiry"};
	json_t *clients = json_object_get(res, "clients"), *v;
	size_t i;

	if (json_array_size(clients) == 0) {
		if (num(res, "total") > 0)
			printf("no client on this page\n");
		else
			printf("no clients logged in\n");
		show_client_counts(res, 0);
		return;
	}
	table_row(&t, head);
	json_array_foreach (clients, i, v) {
		char seen[32], exp[32], cert[32];
		const char *row[7] = {str(v, "name"),
		                      str(v, "address"),
		                      str(v, "connection_security"),
		                      json_is_true(json_object_get(v, "connected")) ? "yes" : "no",
		                      seen,
		                      exp,
		                      cert};

		utc_to_local(str(v, "last_heartbeat"), seen, sizeof(seen));
		utc_to_local(str(v, "token_expiry"), exp, sizeof(exp));
		utc_to_local(str(v, "cert_not_after"), cert, sizeof(cert));
		table_row(&t, row);
	}
	table_print(&t);
	show_client_counts(res, json_array_size(clients));
}

static void show_server(json_t *srv)
{
	struct table t = {.ncols = 2};
	char started[32], up[32], clients[64], admins[24];
	const char *rows[][2] = {
	        {"server", str(srv, "name")},
	        {"project", str(srv, "project")},
	        {"status", str(srv, "status")},
	        {"started", started},
	        {"uptime", up},
	        {"clients", clients},
	        {"admins", admins},
	};

	utc_to_local(str(srv, "started_at"), started, sizeof(started));
	duration(num(srv, "uptime_s"), up, sizeof(up));
	if (json_object_get(srv, "clients_connected") != NULL)
		snprintf(clients, sizeof(clients), "%" PRId64 " (%" PRId64 " connected)",
		         num(srv, "clients"), num(srv, "clients_connected"));
	else
		snprintf(clients, sizeof(clients), "%" PRId64, num(srv, "clients"));
	snprintf(admins, sizeof(admins), "%" PRId64, num(srv, "admins"));
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		table_row(&t, rows[i]);
	table_print(&t);
}

static void show_fields(json_t *res);

static void show_status(json_t *res)
{
	if (json_is_array(json_object_get(res, "clients")))
		show_clients(res);
	else if (json_is_object(json_object_get(res, "server")))
		show_server(json_object_get(res, "server"));
	else
		show_fields(res);
}

/* --- jobs ---------------------------------------------------------------------------------------
 */

/* How long the job has run. The server's list has no start or end time: a job not finished
 * counts from its submission; a finished one adds up its rounds' times when the list has them
 * (list_jobs ID), else shows "-". */
static int64_t job_seconds(json_t *job, time_t now)
{
	json_t *metrics = json_object_get(job, "metrics"), *m;
	const char *st = str(job, "status");
	double secs = 0;
	size_t i;

	if (st != NULL && strncmp(st, "FINISHED", 8) != 0)
		return (int64_t)now - num(job, "submitted_at");
	if (!json_is_array(metrics) || json_array_size(metrics) == 0)
		return -1;
	json_array_foreach (metrics, i, m)
		secs += json_number_value(json_object_get(m, "seconds"));
	return (int64_t)(secs + 0.5);
}

static void show_rounds(json_t *metrics)
{
	struct table t = {.ncols = 5};
	const char *head[] = {"round", "clients", "train loss", "test accuracy", "seconds"};
	json_t *m;
	size_t i;

	table_row(&t, head);
	json_array_foreach (metrics, i, m) {
		char c[5][32];
		const char *row[5] = {c[0], c[1], c[2], c[3], c[4]};

		snprintf(c[0], sizeof(c[0]), "%" PRId64, num(m, "round"));
		snprintf(c[1], sizeof(c[1]), "%" PRId64, num(m, "clients"));
		snprintf(c[2], sizeof(c[2]), "%.4f",
		         json_number_value(json_object_get(m, "train_loss")));
		snprintf(c[3], sizeof(c[3]), "%.4f",
		         json_number_value(json_object_get(m, "test_accuracy")));
		snprintf(c[4], sizeof(c[4]), "%.1f",
		         json_number_value(json_object_get(m, "seconds")));
		table_row(&t, row);
	}
	table_print(&t);
}

/* One job: what each site said of it (accepted, refused and why, failed and why). */
static void show_sites(json_t *sites)
{
	struct table t = {.ncols = 3};
	const char *head[] = {"site", "state", "reason"};
	const char *name;
	json_t *o;

	table_row(&t, head);
	json_object_foreach (sites, name, o) {
		const char *row[3] = {name, str(o, "state"), str(o, "reason")};

		table_row(&t, row);
	}
	table_print(&t);
}

/* Under the sites: their counts, and how many the server left out of a long list. */
static void show_site_counts(json_t *job)
{
	json_t *c = json_object_get(job, "site_counts");

	if (!json_is_object(c) || json_object_get(job, "sites_omitted") == NULL)
		return;
	printf("%" PRId64 " sites: %" PRId64 " accepted, %" PRId64 " refused, %" PRId64
	       " failed; %" PRId64 " not shown (those that accepted first)\n",
	       num(c, "accepted") + num(c, "refused") + num(c, "failed"), num(c, "accepted"),
	       num(c, "refused"), num(c, "failed"), num(job, "sites_omitted"));
}

static void show_jobs(json_t *res)
{
	json_t *jobs = json_object_get(res, "jobs"), *j;
	struct table t = {.ncols = 6};
	const char *head[] = {"job id", "name", "status", "rounds", "submitted", "duration"};
	time_t now = time(NULL);
	size_t i;

	if (!json_is_array(jobs)) {
		show_fields(res);
		return;
	}
	if (json_array_size(jobs) == 0) {
		printf("no jobs\n");
		return;
	}
	table_row(&t, head);
	json_array_foreach (jobs, i, j) {
		char rounds[32], when[32], took[32];
		const char *row[6] = {str(j, "id"), str(j, "name"), str(j, "status"),
		                      rounds,       when,           took};

		snprintf(rounds, sizeof(rounds), "%" PRId64 "/%" PRId64, num(j, "rounds_done"),
		         num(j, "num_rounds"));
		local_time(num(j, "submitted_at"), when, sizeof(when));
		duration(job_seconds(j, now), took, sizeof(took));
		table_row(&t, row);
	}
	table_print(&t);
	/* One job: its error and its rounds too. */
	j = json_array_get(jobs, 0);
	if (json_array_size(jobs) == 1 && str(j, "error") != NULL && str(j, "error")[0] != '\0')
		printf("error: %s\n", str(j, "error"));
	if (json_array_size(jobs) == 1 && json_object_size(json_object_get(j, "sites")) > 0) {
		putchar('\n');
		show_sites(json_object_get(j, "sites"));
		show_site_counts(j);
	}
	if (json_array_size(jobs) == 1 && json_array_size(json_object_get(j, "metrics")) > 0) {
		putchar('\n');
		show_rounds(json_object_get(j, "metrics"));
	}
}

static void show_submit(json_t *res)
{
	printf("submitted job %s\n", str(res, "job_id") != NULL ? str(res, "job_id") : "?");
}

static void show_abort(json_t *res)
{
	printf("aborted job %s\n", str(res, "aborted") != NULL ? str(res, "aborted") : "?");
}

static void show_remove(json_t *res)
{
	printf("removed client %s\n", str(res, "removed") != NULL ? str(res, "removed") : "?");
}

static void show_shutdown(json_t *res)
{
	const char *who = str(res, "shutdown");

	if (who != NULL && strcmp(who, "all") == 0)
		printf("asked every client to shut down\n");
	else
		printf("asked client %s to shut down\n", who != NULL ? who : "?");
}

/* Any other answer: its fields, one a line (objects one level down flattened). */
static void show_fields(json_t *res)
{
	struct table t = {.ncols = 2};
	const char *key;
	json_t *v;

	json_object_foreach (res, key, v) {
		json_t *inner = json_is_object(v) ? v : NULL;
		const char *k2;
		json_t *v2;

		if (inner == NULL) {
			char *text = json_dumps(v, JSON_ENCODE_ANY);
			const char *row[2] = {key, text};

			table_row(&t, row);
			free(text);
			continue;
		}
		json_object_foreach (inner, k2, v2) {
			char *text = json_dumps(v2, JSON_ENCODE_ANY);
			const char *row[2] = {k2, text};

			table_row(&t, row);
			free(text);
		}
	}
	table_print(&t);
}

/* A reply as its command's view says. */
static void show(enum admin_view view, json_t *res)
{
	switch (view) {
	case ADMIN_VIEW_STATUS:
		show_status(res);
		break;
	case ADMIN_VIEW_JOBS:
		show_jobs(res);
		break;
	case ADMIN_VIEW_SUBMIT:
		show_submit(res);
		break;
	case ADMIN_VIEW_ABORT:
		show_abort(res);
		break;
	case ADMIN_VIEW_REMOVE:
		show_remove(res);
		break;
	case ADMIN_VIEW_SHUTDOWN:
		show_shutdown(res);
		break;
	case ADMIN_VIEW_FIELDS:
	default:
		show_fields(res);
		break;
	}
}

/* --- the reply callback
 * --------------------------------------------------------------------------- */

void admin_show_reply(struct cfl_admin *s, const struct cfl_admin_reply *r, void *arg)
{
	struct admin_ctx *x = arg;
	const struct admin_cmd *c = x->sent;
	json_t *res;

	(void)s;
	x->sent = NULL;
	if (r->status != 0) {
		admin_fail(x, r->status, "%s", r->error);
		return;
	}
	x->status = 0;
	res = x->json || r->saved_to != NULL ? NULL : json_loadb(r->body, r->len, 0, NULL);
	if (r->saved_to != NULL) {
		const char *slash = strrchr(r->saved_to, '/');

		printf("downloaded job %s to %s\n", slash != NULL ? slash + 1 : r->saved_to,
		       r->saved_to);
	} else if (res == NULL) {
		/* --json, or not JSON: as it came. */
		fwrite(r->body, 1, r->len, stdout);
		fputc('\n', stdout);
	} else {
		show(c != NULL ? c->show : ADMIN_VIEW_FIELDS, res);
	}
	json_decref(res);
	fflush(stdout);
}
