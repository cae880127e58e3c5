/* libFuzzer target for admin commands, from the keyboard to the server and back:
 * - the program's reading of the console (cmd/admin_parse.c, compiled into this target): lines
 *   of stdin (admin_read_line) and their parsing against the command table (admin_parse,
 *   admin_join);
 * - the library's admin session (src/client/admin_session.c) sending those commands and taking
 *   the server's replies: it runs over a messaging hub whose connection is one end of a
 *   socketpair, and this target plays the server at the other end;
 * - the server's split of each command it gets (cfl__admin_cmd_parse in
 *   src/server/admin_cmds.c; the handler around it needs a logged-in admin session, so the
 *   parser is fed directly). A submit_job body is a job bundle: fuzz_bundle.c covers it.
 *
 * Input: one settings byte (bit 1: interactive, the text is stdin, else it is --cmd; bit 2:
 * successful replies stream in two frames; bit 0, once --json, is the program's printing and
 * ignored), then the command text up to the first NUL, then the replies, separated by NULs and
 * used in turn for the session's requests: one starting with '!' is an error reply whose reason
 * is the rest, any other is a reply body (JSON, as the server sends). When the replies run out
 * the server hangs up. The whole input after the settings byte, NULs included, is also read as
 * stdin by admin_read_line alone. submit_job commands are parsed but not sent: the session
 * would pack a local folder (the admin's own input, not outside input).
 *
 * Checked, besides no crash, leak or undefined behaviour:
 * - every line is read whole: up to its '\n', its command ending at the first '\r' or NUL, and
 *   a line over ADMIN_LINE_MAX bytes refused whole (no piece of it becomes a command);
 * - a parsed line has a command of the table with the right number of arguments, words without
 *   blanks, and joins into a line of at most ADMIN_LINE_MAX bytes with the same words; a line
 *   over ADMIN_LINE_MAX bytes (--cmd) is refused, not cut;
 * - the server gets exactly the joined line of a command given (nothing else, one at a time);
 *   its split has the same words, or refuses a word too long for its field (never cuts it);
 * - the session ends exactly once; downloads land only in transfer/<the id asked for>/, as
 *   plain files with plain names, at most 64 of them, in a temporary folder emptied after each
 *   run; a reply's outcome names the command sent.
 * Nothing is printed: the library logs into a sink that drops the lines. */
#define _GNU_SOURCE
#include "cfl/conn.h"
#include "cfl/frame.h"
#include "cfl/log.h"
#include "cfl/msg.h"
#include "cfl/proto.h"
#include "client/client_int.h"
#include "cmd/admin.h"
#include "net/conn_int.h"
#include "server/server_int.h"
#include "util/fs.h"

#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLANKS " \t\n\v\f\r"
/* transfer/ sits this deep in the temporary folder, and inputs with as many ".." are skipped:
 * a download that climbed out of transfer/ would land inside the folder, where check_tree()
 * sees it. */
#define DEPTH         8
#define INPUT_MAX     65536 /* larger inputs are skipped: a reply goes in one frame */
#define JOB_FILES_MAX 64    /* what the session accepts in a download (admin_session.c) */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cfl_loop *loop;
static char work[PATH_MAX], transfer[PATH_MAX];

/* The lines of a text as admin_read_line must return them: the oracle. */
struct lines {
	const char *p, *end;
};

/* One run. */
static struct {
	/* the program's side */
	struct cfl_admin *s;
	struct cfl_peer *peer;
	int interactive, stream, done, started;
	const char *text; /* the command text */
	size_t text_len;
	FILE *in; /* interactive: the text as stdin */
	struct lines expect;
	char sent[ADMIN_LINE_MAX + 1]; /* the command waiting for its reply, "" if none */
	const struct admin_cmd *sent_cmd;
	char sent_arg[ADMIN_LINE_MAX + 1];     /* its first argument */
	char downloads[4][ADMIN_LINE_MAX + 1]; /* ids asked for by download_job */
	size_t n_downloads;
	/* the server's side */
	int fd; /* its end of the socketpair, -1 once it hung up */
	const uint8_t *replies, *end;
	uint64_t next_id;
	uint8_t in_buf[65536]; /* bytes from the session, not yet a whole frame */
	size_t in_len;
} S;

static void check(int ok)
{
	if (!ok)
		abort();
}

static void drop(enum cfl_log_level level, const char *line, void *arg)
{
	(void)level;
	(void)line;
	(void)arg;
}

static void cleanup(void)
{
	cfl_loop_free(loop);
	cfl__fs_rmtree(work);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	struct stat st;
	size_t n;

	(void)argc;
	(void)argv;
	cfl_log_set_sink(drop, NULL);
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";
	snprintf(work, sizeof(work), "%s/cfl-fuzz-admin-XXXXXX", tmp != NULL ? tmp : "/tmp");
	check(mkdtemp(work) != NULL);
	n = strlen(work);
	memcpy(transfer, work, n);
	for (int i = 0; i < DEPTH; i++, n += 2)
		memcpy(transfer + n, "/d", 2);
	memcpy(transfer + n, "/transfer", sizeof("/transfer"));
	check(cfl_loop_new(&loop, NULL) == 0);
	atexit(cleanup);
	return 0;
}

/* --- the console's lines ------------------------------------------------------------------- */

/* Checks what admin_read_line returned (rc, buf) against the next line of the oracle. */
static void check_line(struct lines *l, int rc, const char *buf)
{
	const char *eol, *p = l->p;
	size_t len, cmd = 0;

	if (p >= l->end) {
		check(rc == 0);
		return;
	}
	eol = memchr(p, '\n', (size_t)(l->end - p));
	len = (eol != NULL ? eol : l->end) - p;
	l->p = eol != NULL ? eol + 1 : l->end;
	while (cmd < len && p[cmd] != '\r' && p[cmd] != '\0')
		cmd++;
	if (len > 0 && p[len - 1] == '\r')
		len--;
	if (len > ADMIN_LINE_MAX) {
		check(rc == -1 && buf[0] == '\0');
		return;
	}
	check(rc == 1 && strlen(buf) == cmd && memcmp(buf, p, cmd) == 0);
}

/* The target's own split of `line`: its first `max` words into w[] (pointers into line) and
 * their lengths. Returns how many words the line has. */
static int words(const char *line, const char **w, size_t *wl, int max)
{
	int n = 0;

	for (line += strspn(line, BLANKS); *line != '\0'; line += strspn(line, BLANKS), n++) {
		size_t len = strcspn(line, BLANKS);

		if (n < max) {
			w[n] = line;
			wl[n] = len;
		}
		line += len;
	}
	return n;
}

static int one_of(const char *w, const char *const *list)
{
	for (; *list != NULL; list++) {
		if (strcmp(w, *list) == 0)
			return 1;
	}
	return 0;
}

/* admin_parse's promises for `line`; returns its result in *l. */
static int parse(const char *line, int console, struct admin_line *l)
{
	const char *w[ADMIN_ARGS_MAX + 1];
	size_t wl[ADMIN_ARGS_MAX + 1];
	char joined[ADMIN_LINE_MAX + 1];
	int rc = admin_parse(line, console, l), n;

	if (strlen(line) > ADMIN_LINE_MAX) {
		check(rc != 0 && strstr(l->err, "too long") != NULL);
		return rc;
	}
	n = words(line, w, wl, ADMIN_ARGS_MAX + 1);
	if (rc != 0) {
		check(l->cmd == NULL && (l->err[0] != '\0') == (n > 0));
		return rc;
	}
	check(l->cmd != NULL && l->cmd == admin_cmd_find(l->argv[0]));
	check(l->argc == n && l->argc - 1 >= l->cmd->min_args && l->argc - 1 <= l->cmd->max_args);
	check(l->cmd->words == NULL || one_of(l->argv[1], l->cmd->words));
	for (int i = 0; i < n; i++)
		check(strlen(l->argv[i]) == wl[i] && memcmp(l->argv[i], w[i], wl[i]) == 0);
	/* What the server gets: the same words, in at most ADMIN_LINE_MAX bytes. */
	check(admin_join(l, joined, sizeof(joined)) == 0);
	check(words(joined, w, wl, ADMIN_ARGS_MAX + 1) == n);
	for (int i = 0; i < n; i++)
		check(strlen(l->argv[i]) == wl[i] && memcmp(l->argv[i], w[i], wl[i]) == 0);
	return 0;
}

/* --- the server's side --------------------------------------------------------------------- */

/* The server's split of `cmd`: its words, or refused because one does not fit its field. */
static void server_parse(const char *cmd)
{
	struct cfl__admin_cmd c;
	const size_t fields[4] = {sizeof(c.verb), sizeof(c.arg), sizeof(c.arg2), sizeof(c.arg3)};
	const char *w[4] = {"", "", "", ""};
	size_t wl[4] = {0, 0, 0, 0};
	char err[256] = "";
	int n = words(cmd, w, wl, 4), fits = 1;

	for (int i = 0; i < 4 && i < n; i++)
		fits &= wl[i] < fields[i];
	if (cfl__admin_cmd_parse(cmd, &c, err, sizeof(err)) != 0) {
		check(err[0] != '\0' && (n == 0 || !fits));
		return;
	}
	check(n > 0 && fits);
	check(strlen(c.verb) == wl[0] && memcmp(c.verb, w[0], wl[0]) == 0);
	check(strlen(c.arg) == wl[1] && memcmp(c.arg, w[1], wl[1]) == 0);
	check(strlen(c.arg2) == wl[2] && memcmp(c.arg2, w[2], wl[2]) == 0);
	check(strlen(c.arg3) == wl[3] && memcmp(c.arg3, w[3], wl[3]) == 0);
}

static void send_frame(const struct cfl_frame *f)
{
	size_t need = cfl_frame_encoded_size(f);
	uint8_t *buf = malloc(need);
	int n;

	check(need > 0 && buf != NULL);
	n = cfl_frame_encode(buf, need, f);
	check(n > 0 && send(S.fd, buf, (size_t)n, MSG_NOSIGNAL) == n);
	free(buf);
}

static void hang_up(void)
{
	if (S.fd >= 0)
		close(S.fd);
	S.fd = -1;
}

/* The next reply, to request `id`; or the server hangs up when there is none. */
static void reply(uint64_t id)
{
	const uint8_t *r = S.replies, *nul;
	struct cfl_frame f;
	char total[24];
	size_t len, half;

	if (r == NULL || r >= S.end) {
		hang_up();
		return;
	}
	nul = memchr(r, '\0', (size_t)(S.end - r));
	len = nul != NULL ? (size_t)(nul - r) : (size_t)(S.end - r);
	S.replies = r + len + 1;
	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_REPLY;
	f.id = S.next_id += 2;
	f.ref = id;
	if (len > 0 && r[0] == '!') {
		f.flags = CFL_FRAME_F_ERROR;
		f.n_headers = 1;
		f.headers[0] = CFL_HDR(CFL_KEY_STATUS, "failed");
		f.body = r + 1;
		f.body_len = len - 1;
		send_frame(&f);
		return;
	}
	half = S.stream ? len / 2 : len;
	if (S.stream) {
		snprintf(total, sizeof(total), "%zu", len);
		f.flags = CFL_FRAME_F_MORE;
		f.n_headers = 1;
		f.headers[0] = CFL_HDR(CFL_KEY_BODY_LENGTH, total);
	}
	f.body = r;
	f.body_len = half;
	send_frame(&f);
	if (S.stream) {
		uint64_t stream = f.id;

		memset(&f, 0, sizeof(f));
		f.type = CFL_FRAME_T_CHUNK;
		f.id = S.next_id += 2;
		f.ref = stream;
		f.body = r + half;
		f.body_len = len - half;
		send_frame(&f);
	}
}

/* A request from the session: the command given, whole, and only one at a time. */
static void serve_request(const struct cfl_frame *f)
{
	char cmd[CFL_FRAME_MAX_VALUE + 1], topic[64];

	check(cfl_frame_header_str(f, CFL_KEY_TOPIC, topic, sizeof(topic)) == 0 &&
	      strcmp(topic, CFL_TOPIC_ADMIN) == 0);
	check(cfl_frame_header_str(f, CFL_KEY_CMD, cmd, sizeof(cmd)) == 0);
	check(S.sent[0] != '\0' && strcmp(cmd, S.sent) == 0);
	server_parse(cmd);
	reply(f->id);
}

/* Reads what the session sent; answers each request. Returns the bytes read. */
static size_t serve(void)
{
	ssize_t got = S.fd >= 0 ? recv(S.fd, S.in_buf + S.in_len, sizeof(S.in_buf) - S.in_len,
	                               MSG_DONTWAIT)
	                        : 0;
	size_t off = 0;

	if (got <= 0)
		return 0;
	S.in_len += (size_t)got;
	while (S.fd >= 0) {
		struct cfl_frame f;
		int n = cfl_frame_decode(S.in_buf + off, S.in_len - off, sizeof(S.in_buf), &f);

		check(n >= 0);
		if (n == 0)
			break;
		off += (size_t)n;
		if (f.type == CFL_FRAME_T_REQUEST)
			serve_request(&f);
	}
	memmove(S.in_buf, S.in_buf + off, S.in_len - off);
	S.in_len -= off;
	return (size_t)got;
}

/* --- the program's side: the session's callbacks ------------------------------------------- */

/* Sends the command of line `l` as admin_dispatch does. 1 if it went. */
static int send_line(struct cfl_admin *s, const struct admin_line *l)
{
	struct cfl_err e = {0};
	int rc;

	if (l->cmd->local != ADMIN_TO_SERVER || strcmp(l->cmd->name, "submit_job") == 0)
		return 0;
	check(admin_join(l, S.sent, sizeof(S.sent)) == 0);
	S.sent_cmd = l->cmd;
	snprintf(S.sent_arg, sizeof(S.sent_arg), "%s", l->argc > 1 ? l->argv[1] : "");
	rc = cfl_admin_send(s, S.sent, &e);
	if (rc != 0) {
		/* Refused here (a job id that is no plain name): nothing goes out. */
		check(rc == CFL_EINVAL && e.code == rc && e.msg[0] != '\0' &&
		      strcmp(l->cmd->name, "download_job") == 0);
		S.sent[0] = '\0';
		return 0;
	}
	if (strcmp(l->cmd->name, "download_job") == 0 &&
	    S.n_downloads < sizeof(S.downloads) / sizeof(S.downloads[0]))
		snprintf(S.downloads[S.n_downloads++], sizeof(S.downloads[0]), "%s", S.sent_arg);
	return 1;
}

/* The next line of stdin that makes a command; 0 at the end of the input or at bye. */
static int next_interactive(struct cfl_admin *s)
{
	char buf[ADMIN_LINE_MAX + 1];
	struct admin_line l;
	int rc;

	while ((rc = admin_read_line(S.in, buf, sizeof(buf))) != 0) {
		check_line(&S.expect, rc, buf);
		if (rc < 0 || parse(buf, 1, &l) != 0)
			continue;
		if (l.cmd->local == ADMIN_BYE)
			return 0;
		if (send_line(s, &l))
			return 1;
	}
	check_line(&S.expect, rc, buf);
	return 0;
}

static void on_ready(struct cfl_admin *s, void *arg)
{
	struct admin_line l;
	char *cmd;

	(void)arg;
	check(S.sent[0] == '\0');
	if (S.interactive) {
		if (!next_interactive(s))
			cfl_admin_quit(s, 0, NULL);
		return;
	}
	/* --cmd: one command, then the end. */
	if (!S.started) {
		S.started = 1;
		cmd = strndup(S.text, S.text_len);
		check(cmd != NULL);
		if (parse(cmd, 0, &l) == 0 && send_line(s, &l)) {
			free(cmd);
			return;
		}
		free(cmd);
	}
	cfl_admin_quit(s, 0, NULL);
}

static void on_reply(struct cfl_admin *s, const struct cfl_admin_reply *r, void *arg)
{
	char dir[PATH_MAX];

	(void)s;
	(void)arg;
	check(S.sent[0] != '\0' && strcmp(r->cmd, S.sent) == 0);
	S.sent[0] = '\0';
	check(r->body != NULL && r->body[r->len] == '\0');
	if (r->status != 0) {
		check(r->status < 0 && r->error != NULL && r->error[0] != '\0' && r->len == 0);
		check(r->saved_to == NULL);
		return;
	}
	if (strcmp(S.sent_cmd->name, "download_job") != 0) {
		check(r->saved_to == NULL);
		return;
	}
	/* A download lands in transfer/<the id asked for>, nowhere else. */
	check(r->saved_to != NULL && cfl__path_join(dir, sizeof(dir), transfer, S.sent_arg) == 0);
	check(strcmp(r->saved_to, dir) == 0);
}

static void on_done(int status, const char *reason, void *arg)
{
	(void)status;
	(void)reason;
	(void)arg;
	S.done++;
}

static void on_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	(void)code;
	(void)reason;
	(void)arg;
	S.peer = p;
	/* As after the login: replies may stream. */
	check(cfl_conn_set_max_payload(cfl_peer_conn(p), CFL_FRAME_MAX_PAYLOAD) == 0);
}

static void on_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	(void)code;
	(void)reason;
	(void)arg;
	if (p != S.peer)
		return;
	S.peer = NULL;
	if (S.s != NULL)
		cfl__admin_peer_down(S.s);
}

/* --- the files written --------------------------------------------------------------------- */

/* Every entry of `dir` is "." or ".." or `only`. */
static void check_only(const char *dir, const char *only)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		check(strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		      strcmp(de->d_name, only) == 0);
	closedir(d);
}

static int downloaded(const char *id)
{
	for (size_t i = 0; i < S.n_downloads; i++) {
		if (strcmp(S.downloads[i], id) == 0)
			return 1;
	}
	return S.n_downloads == sizeof(S.downloads) / sizeof(S.downloads[0]); /* lost count */
}

/* A job's folder: plain files with plain names, at most JOB_FILES_MAX. */
static void check_job(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *fe;
	struct stat st;
	DIR *jd = opendir(dir);
	int n = 0;

	check(jd != NULL);
	while ((fe = readdir(jd)) != NULL) {
		if (strcmp(fe->d_name, ".") == 0 || strcmp(fe->d_name, "..") == 0)
			continue;
		check(fe->d_name[0] != '.' && ++n <= JOB_FILES_MAX);
		check(cfl__path_join(path, sizeof(path), dir, fe->d_name) == 0);
		check(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
	}
	closedir(jd);
}

/* Downloads land in transfer/<an id asked for>/ only (a download that fails on a garbled file
 * may leave the files before it). */
static void check_tree(void)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	/* The chain of folders down to transfer/, and nothing beside it. */
	snprintf(dir, sizeof(dir), "%s", work);
	for (int i = 0; i <= DEPTH; i++) {
		const char *next = i < DEPTH ? "d" : "transfer";

		check_only(dir, next);
		check(cfl__path_join(path, sizeof(path), dir, next) == 0);
		memcpy(dir, path, sizeof(dir));
	}
	d = opendir(transfer);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		check(de->d_name[0] != '.' && downloaded(de->d_name));
		check(cfl__path_join(dir, sizeof(dir), transfer, de->d_name) == 0);
		check_job(dir);
	}
	closedir(d);
}

/* --- a run ----------------------------------------------------------------------------------- */

/* `text` as a stream to read, as stdin would be. */
static FILE *open_text(const char *text, size_t len)
{
	/* fmemopen wants at least one byte */
	FILE *in = len > 0 ? fmemopen((void *)text, len, "r") : fopen("/dev/null", "r");

	check(in != NULL);
	return in;
}

/* admin_read_line over all of `text` (NULs included), against the oracle. */
static void read_all(const char *text, size_t len)
{
	struct lines l = {text, text + len};
	struct admin_line al;
	char buf[ADMIN_LINE_MAX + 1];
	FILE *in = open_text(text, len);
	int rc;

	do {
		rc = admin_read_line(in, buf, sizeof(buf));
		check_line(&l, rc, buf);
		if (rc > 0)
			(void)parse(buf, 1, &al);
	} while (rc != 0);
	fclose(in);
}

static int dotdots(void)
{
	int n = 0;

	for (size_t i = 0; i + 1 < S.text_len; i++)
		n += S.text[i] == '.' && S.text[i + 1] == '.';
	return n;
}

/* Runs the conversation to its end: a few loop rounds per command sent, and a command with its
 * reply takes ten bytes of input or more, so 8 rounds per byte are ample. */
static void converse(size_t size)
{
	size_t rounds, idle = 0;

	for (rounds = 0; rounds < 1000 + 8 * size && (!S.done || S.peer != NULL); rounds++) {
		int ran = cfl_loop_run_once(loop, 0);

		if (ran > 0 || serve() > 0) {
			idle = 0;
			continue;
		}
		/* Nothing moves: the session waits for a reply that will not come, or it is over
		 * and the server hangs up. */
		if (++idle > 2)
			hang_up();
	}
	check(S.done == 1 && S.peer == NULL);
}

/* The server's split of the text as a command line, whatever the program thinks of it: an
 * admin's own program may send anything. */
static void server_parse_text(void)
{
	char *cmd;

	if (S.text_len > ADMIN_LINE_MAX)
		return;
	cmd = strndup(S.text, S.text_len);
	check(cmd != NULL);
	server_parse(cmd);
	free(cmd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cfl_admin_ops ops = {.ready = on_ready, .reply = on_reply};
	struct cfl_msg_hub *hub = NULL;
	struct cfl_conn_opts o;
	const uint8_t *nul;
	int sv[2], rounds;

	if (size < 1 || size > INPUT_MAX)
		return 0;
	memset(&S, 0, sizeof(S));
	S.interactive = (data[0] >> 1) & 1;
	S.stream = (data[0] >> 2) & 1;
	S.text = (const char *)data + 1;
	nul = memchr(data + 1, '\0', size - 1);
	S.text_len = nul != NULL ? (size_t)(nul - (data + 1)) : size - 1;
	S.replies = nul != NULL ? nul + 1 : NULL;
	S.end = data + size;
	S.next_id = 1;
	S.expect = (struct lines){S.text, S.text + S.text_len};
	read_all((const char *)data + 1, size - 1);
	server_parse_text();
	if (dotdots() >= DEPTH)
		return 0;

	check(cfl_msg_hub_new(loop, "admin", &hub, NULL) == 0);
	cfl_msg_hub_on_peer(hub, on_up, on_down, NULL);
	check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	S.fd = sv[1];
	o = cfl_msg_hub_conn_opts(hub, NULL);
	check(cfl__conn_adopt(loop, sv[0], &o) != NULL);
	for (rounds = 0; rounds < 100 && S.peer == NULL; rounds++)
		(void)cfl_loop_run_once(loop, 0);
	check(S.peer != NULL);
	if (S.interactive)
		S.in = open_text(S.text, S.text_len);
	S.s = cfl__admin_new(&ops);
	check(S.s != NULL);
	/* No key: submit_job is never sent here (see the top of this file). */
	cfl__admin_start(S.s, S.peer, &(struct cfl__admin_kit){transfer, NULL, NULL}, on_done,
	                 NULL);
	converse(size);

	if (S.in != NULL)
		fclose(S.in);
	hang_up();
	cfl__admin_free(S.s);
	cfl_msg_hub_free(hub);
	check_tree();
	cfl__fs_rmtree(transfer);
	return 0;
}
