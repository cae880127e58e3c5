/* The admin console: sends commands to the server's `admin` topic and prints the results. */
#include "client_int.h"

#include "cfl/log.h"

#include "cfl/pki.h"
#include "cfl/proto.h"
#include "util/bufsrc.h"
#include "util/fs.h"

#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024

#define BODY_MAX      (256u << 20)
#define JOB_FILES_MAX 64

struct console {
	struct cfl_peer *peer;
	int json, interactive, tty;
	cfl__admin_done_fn done;
	void *arg;
	char transfer[PATH_MAX]; /* where download_job writes */
	char verb[64], what[256];
	/* the reply, collected */
	char *body;
	size_t len, cap;
	int failed;
	/* a bundle being sent */
	char *out;
	size_t out_len, out_off;
};

static void print_table(json_t *res)
{
	json_t *clients = json_object_get(res, "clients"), *v;
	const char *key;
	size_t i;

	if (json_is_array(clients)) {
		printf("%-24s %-22s %-6s %-10s %-21s %-21s\n", "name", "address", "mode",
		       "connected", "last heartbeat", "token expiry");
		json_array_foreach (clients, i, v) {
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
	json_object_foreach (res, key, v) {
		if (json_is_object(v)) {
			const char *k2;
			json_t *v2;

			json_object_foreach (v, k2, v2) {
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
static int send_cmd(struct console *k, const char *cmd);
static void step_done(struct console *k, int status, const char *reason);

static void step_done(struct console *k, int status, const char *reason)
{
	free(k->body);
	k->body = NULL;
	k->len = k->cap = 0;
	k->failed = 0;
	if (!k->interactive || (status != 0 && status != CFL_EPROTO)) {
		k->done(status, reason, k->arg);
		free(k->out);
		free(k);
		return;
	}
	run_next(k);
}

/* download_job: the bundle's files go to the admin kit's transfer/<job id>/. */
static int save_download(struct console *k, json_t *res)
{
	json_t *files = json_object_get(res, "files"), *v;
	char dir[PATH_MAX], path[PATH_MAX];
	const char *name;
	struct cfl_err e = {0};

	if (!json_is_object(files) ||
	    snprintf(dir, sizeof(dir), "%s/%s", k->transfer, k->what) >= (int)sizeof(dir) ||
	    cfl__fs_mkdirs(dir, 0700, &e) != 0)
		return -1;
	json_object_foreach (files, name, v) {
		uint8_t *raw = NULL;
		size_t n = 0;

		if (name[0] == '.' || strchr(name, '/') != NULL ||
		    cfl_base64_decode(json_string_value(v), json_string_length(v), &raw, &n) != 0 ||
		    cfl__path_join(path, sizeof(path), dir, name) != 0 ||
		    cfl__fs_write_file(path, raw, n, 0644, &e) != 0) {
			free(raw);
			return -1;
		}
		free(raw);
	}
	printf("downloaded job %s to %s\n", k->what, dir);
	return 0;
}

static void show(struct console *k)
{
	json_t *res = json_loadb(k->body != NULL ? k->body : "", k->len, 0, NULL);

	if (strcmp(k->verb, "download_job") == 0) {
		if (res == NULL || save_download(k, res) != 0)
			fprintf(stderr, "error: cannot save the download\n");
	} else if (k->json || res == NULL) {
		fwrite(k->body != NULL ? k->body : "", 1, k->len, stdout);
		fputc('\n', stdout);
	} else {
		print_table(res);
	}
	json_decref(res);
	fflush(stdout);
}

static void body_data(void *st, const uint8_t *d, size_t n)
{
	struct console *k = st;

	if (k->failed || n == 0)
		return;
	if (k->len + n > BODY_MAX) {
		k->failed = 1;
		return;
	}
	if (k->len + n > k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 65536;
		char *p;

		while (cap < k->len + n)
			cap *= 2;
		p = realloc(k->body, cap);
		if (p == NULL) {
			k->failed = 1;
			return;
		}
		k->body = p;
		k->cap = cap;
	}
	memcpy(k->body + k->len, d, n);
	k->len += n;
}

static void body_end(void *st, int status, const char *reason)
{
	struct console *k = st;

	if (status != 0 || k->failed) {
		fprintf(stderr, "error: %s\n", reason ? reason : "reply too large");
		step_done(k, status != 0 ? status : CFL_ETOOBIG, reason);
		return;
	}
	show(k);
	step_done(k, 0, NULL);
}

static void on_reply(struct cfl_peer *p, int status, const char *reason, const struct cfl_frame *f,
                     int more, struct cfl_msg_sink *sink, void *arg)
{
	struct console *k = arg;

	(void)p;
	if (status != 0) {
		fprintf(stderr, "error: %s\n", reason ? reason : cfl_strerror(status));
		step_done(k, status, reason);
		return;
	}
	body_data(k, f->body, f->body_len);
	if (more)
		*sink = (struct cfl_msg_sink){body_data, body_end, k};
	else
		body_end(k, 0, NULL);
}

/* submit_job: the job folder's regular files as {"files": {name: base64}}. */
static int pack_folder(const char *dir, char **out, size_t *len)
{
	json_t *files = json_object(), *b;
	struct dirent *de;
	char path[PATH_MAX];
	DIR *d = opendir(dir);
	int rc = 0, count = 0;

	if (d == NULL) {
		fprintf(stderr, "error: cannot open job folder '%s'\n", dir);
		json_decref(files);
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		struct stat st;
		char *buf = NULL, *b64 = NULL;
		size_t n = 0;

		if (de->d_name[0] == '.' ||
		    cfl__path_join(path, sizeof(path), dir, de->d_name) != 0 ||
		    stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (++count > JOB_FILES_MAX ||
		    cfl__fs_read_file(path, 16u << 20, &buf, &n, NULL) != 0 ||
		    cfl_base64_encode(buf, n, &b64) != 0) {
			fprintf(stderr, "error: cannot pack '%s' (at most %d files of 16 MiB)\n",
			        path, JOB_FILES_MAX);
			rc = -1;
		} else {
			json_object_set_new(files, de->d_name, json_string(b64));
		}
		free(buf);
		free(b64);
	}
	closedir(d);
	b = json_pack("{s:o}", "files", files);
	*out = rc == 0 ? json_dumps(b, JSON_COMPACT) : NULL;
	json_decref(b);
	if (*out == NULL)
		return -1;
	*len = strlen(*out);
	return 0;
}

static int out_read(void *src, uint8_t *buf, size_t len)
{
	struct console *k = src;

	return (int)cfl__buf_take(k->out, k->out_len, &k->out_off, buf, len);
}

static int send_cmd(struct console *k, const char *cmd)
{
	char line[1024];
	struct cfl_header h = CFL_HDR_BYTES(CFL_KEY_CMD, line, 0);

	k->verb[0] = k->what[0] = '\0';
	sscanf(cmd, "%63s %255s", k->verb, k->what);
	free(k->out);
	k->out = NULL;
	k->out_len = k->out_off = 0;
	if (strcmp(k->verb, "submit_job") == 0) {
		/* The server gets the bundle, not the local folder name. */
		if (pack_folder(k->what, &k->out, &k->out_len) != 0)
			return -1;
		snprintf(line, sizeof(line), "submit_job");
	} else {
		snprintf(line, sizeof(line), "%s", cmd);
	}
	h.val_len = strlen(line);
	return cfl_peer_request_stream(k->peer, &(struct cfl_request){.topic = CFL_TOPIC_ADMIN,
	                                                              .hdrs = &h,
	                                                              .n_hdrs = 1,
	                                                              .body_len = k->out_len,
	                                                              .read = out_read,
	                                                              .src = k,
	                                                              .reply = on_reply,
	                                                              .arg = k});
}

/* Reads the next command line (blocking the loop while a person types; the full console with
 * line editing keeps the session alive meanwhile). */
#ifdef CFL_HAVE_LIBEDIT
/* A person at a terminal: line editing, history and completion (libedit), read from the event
 * loop so that the session keeps its heartbeats while nobody types. */
#include <editline/readline.h>

static const char *const words[] = {"check_status", "submit_job",    "list_jobs", "abort_job",
                                    "download_job", "remove_client", "shutdown",  "server",
                                    "client",       "all",           "bye",       NULL};
static struct console *tty_k; /* readline's callbacks take no argument */
static int tty_word;

static char *complete_word(const char *text, int state)
{
	size_t n = strlen(text);

	if (state == 0)
		tty_word = 0;
	while (words[tty_word] != NULL) {
		const char *w = words[tty_word++];

		if (strncmp(w, text, n) == 0)
			return strdup(w);
	}
	return NULL;
}

static char **complete(const char *text, int start, int end)
{
	(void)start;
	(void)end;
	return rl_completion_matches(text, complete_word);
}

static void tty_line(char *line);

static void on_stdin(struct cfl_loop *loop, int fd, int events, void *arg)
{
	(void)loop;
	(void)fd;
	(void)events;
	(void)arg;
	rl_callback_read_char();
}

static struct cfl_loop *loop_of(struct console *k)
{
	return cfl_conn_loop(cfl_peer_conn(k->peer));
}

static void tty_prompt(struct console *k)
{
	tty_k = k;
	rl_attempted_completion_function = complete;
	rl_callback_handler_install("cfl> ", tty_line);
	cfl_loop_watch(loop_of(k), STDIN_FILENO, CFL_EV_READ, on_stdin, k);
}

static void tty_line(char *line)
{
	struct console *k = tty_k;
	size_t n;

	rl_callback_handler_remove();
	cfl_loop_unwatch(loop_of(k), STDIN_FILENO);
	if (line == NULL || strcmp(line, "bye") == 0 || strcmp(line, "quit") == 0) {
		free(line);
		fputc('\n', stdout);
		k->done(0, NULL, k->arg);
		free(k->out);
		free(k);
		return;
	}
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n > 0)
		add_history(line);
	if (n == 0 || send_cmd(k, line) != 0) {
		if (n > 0)
			fprintf(stderr, "error: cannot send the command\n");
		tty_prompt(k);
	}
	free(line);
}
#endif

static void run_next(struct console *k)
{
	char line[LINE_MAX_BYTES];
	size_t n;

#ifdef CFL_HAVE_LIBEDIT
	if (k->tty) {
		tty_prompt(k);
		return;
	}
#endif
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
	free(k->out);
	free(k);
}

void cfl__admin_next(struct cfl_peer *p, const char *cmd, int json, const char *transfer,
                     cfl__admin_done_fn done, void *arg)
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
	k->tty = k->interactive && isatty(STDIN_FILENO);
	snprintf(k->transfer, sizeof(k->transfer), "%s", transfer);
	if (cmd == NULL) {
		run_next(k);
		return;
	}
	if (send_cmd(k, cmd) != 0) {
		free(k->out);
		free(k);
		done(CFL_EIO, "cannot send the command", arg);
	}
}
