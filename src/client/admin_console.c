/* The admin console: sends commands to the server's `admin` topic and prints the results. */
#include "client_int.h"

#include "cfl/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024

struct console {
	struct cfl_peer *peer;
	int json, interactive;
	cfl__admin_done_fn done;
	void *arg;
};

static void print_table(json_t *res)
{
	json_t *clients = json_object_get(res, "clients"), *v;
	const char *key;
	size_t i;

	if (json_is_array(clients)) {
		printf("%-24s %-22s %-6s %-10s %-21s %-21s\n", "name", "address", "mode", "connected",
		       "last heartbeat", "token expiry");
		json_array_foreach(clients, i, v) {
			printf("%-24s %-22s %-6s %-10s %-21s %-21s\n",
			       json_string_value(json_object_get(v, "name")),
			       json_string_value(json_object_get(v, "address")),
			       json_string_value(json_object_get(v, "connection_security")),
			       json_is_true(json_object_get(v, "connected")) ? "yes" : "no",
			       json_string_value(json_object_get(v, "last_heartbeat")),
			       json_string_value(json_object_get(v, "token_expiry")));
		}
		return;
	}
	json_object_foreach(res, key, v) {
		if (json_is_object(v)) {
			const char *k2;
			json_t *v2;

			json_object_foreach(v, k2, v2) {
				char *t = json_dumps(v2, JSON_ENCODE_ANY);

				printf("%-12s %s\n", k2, t != NULL ? t : "?");
				free(t);
			}
		} else {
			char *t = json_dumps(v, JSON_ENCODE_ANY);

			printf("%-12s %s\n", key, t != NULL ? t : "?");
			free(t);
		}
	}
}

static void run_next(struct console *k);

static void on_reply(struct cfl_peer *p, int status, const char *reason,
		     const struct cfl_frame *f, int more, struct cfl_msg_sink *sink, void *arg)
{
	struct console *k = arg;
	json_t *res = NULL;

	(void)p;
	(void)more;
	(void)sink;
	if (status != 0) {
		fprintf(stderr, "error: %s\n", reason ? reason : cfl_strerror(status));
		if (!k->interactive) {
			k->done(status, reason, k->arg);
			free(k);
			return;
		}
	} else if (k->json) {
		fwrite(f->body, 1, f->body_len, stdout);
		fputc('\n', stdout);
	} else if ((res = json_loadb((const char *)f->body, f->body_len, 0, NULL)) != NULL) {
		print_table(res);
		json_decref(res);
	}
	fflush(stdout);
	if (!k->interactive) {
		k->done(0, NULL, k->arg);
		free(k);
		return;
	}
	run_next(k);
}

static int send_cmd(struct console *k, const char *cmd)
{
	struct cfl_header h = {"cmd", 3, (const uint8_t *)cmd, strlen(cmd)};

	return cfl_peer_request(k->peer, "admin", &h, 1, NULL, 0, 0, on_reply, k);
}

/* Reads the next command line (blocking the loop while a person types; the full console with
 * line editing keeps the session alive meanwhile). */
static void run_next(struct console *k)
{
	char line[LINE_MAX_BYTES];
	size_t n;

	for (;;) {
		if (isatty(STDIN_FILENO)) {
			fputs("> ", stdout);
			fflush(stdout);
		}
		if (fgets(line, sizeof(line), stdin) == NULL)
			break;
		n = strcspn(line, "\r\n");
		line[n] = '\0';
		if (n == 0)
			continue;
		if (strcmp(line, "bye") == 0 || strcmp(line, "quit") == 0)
			break;
		if (send_cmd(k, line) == 0)
			return;
		fprintf(stderr, "error: cannot send the command\n");
	}
	k->done(0, NULL, k->arg);
	free(k);
}

void cfl__admin_next(struct cfl_peer *p, const char *cmd, int json, cfl__admin_done_fn done,
		     void *arg)
{
	struct console *k = calloc(1, sizeof(*k));

	if (k == NULL) {
		done(CFL_ENOMEM, "out of memory", arg);
		return;
	}
	k->peer = p;
	k->json = json;
	k->done = done;
	k->arg = arg;
	k->interactive = cmd == NULL;
	if (cmd == NULL) {
		run_next(k);
		return;
	}
	if (send_cmd(k, cmd) != 0) {
		free(k);
		done(CFL_EIO, "cannot send the command", arg);
	}
}
