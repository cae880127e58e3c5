/* The admin session: commands to the server's `admin` topic, one at a time, each reply handed
 * to the program as data (cfl/admin.h). No terminal I/O here: the program reads and prints.
 *
 * States: LOGGING IN → READY (ops->ready called) → WAITING (a command sent) → READY ... → ENDED
 * (cfl_admin_quit, or a reply whose failure was the connection's). */
#include "cfl/admin.h"

#include "client_int.h"

#include "cfl/manifest.h"
#include "cfl/pki.h"
#include "cfl/proto.h"
#include "util/bufsrc.h"
#include "util/fs.h"

#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LINE_MAX_BYTES 1024
#define BODY_MAX       (256u << 20)
#define JOB_FILES_MAX  64
#define JOB_FILE_MAX   (16u << 20)

struct cfl_admin {
	struct cfl_admin_ops ops;
	struct cfl_peer *peer; /* NULL before the login and after the connection went */
	struct cfl_loop *loop;
	cfl__admin_done_fn done;
	void *done_arg;
	int waiting, ended;
	char transfer[PATH_MAX];            /* where download_job writes */
	char cert[PATH_MAX], key[PATH_MAX]; /* what submit_job signs with ("": nothing) */
	char line[LINE_MAX_BYTES], verb[64];
	char job[LINE_MAX_BYTES]; /* download_job: the id asked for */
	/* the reply, collected (NUL-terminated) */
	char *body;
	size_t len, cap;
	int too_big;
	/* a job bundle being sent */
	char *out;
	size_t out_len, out_off;
};

static void reset_buffers(struct cfl_admin *s)
{
	free(s->body);
	free(s->out);
	s->body = s->out = NULL;
	s->len = s->cap = s->out_len = s->out_off = 0;
	s->too_big = 0;
}

/* --- download_job: the bundle's files go to <transfer>/<job id>/ ----------------------------- */

/* A job id or file name becomes one path component: nothing leaves the folder it is written
 * into, and nothing is hidden in it. */
static int plain_name(const char *n)
{
	return n != NULL && n[0] != '\0' && n[0] != '.' && strchr(n, '/') == NULL;
}

/* The files object of a download: at most JOB_FILES_MAX, each a plain name with a string
 * value. Checked whole before anything is written. */
static int check_files(json_t *files, struct cfl_err *e)
{
	const char *name;
	json_t *v;

	if (!json_is_object(files))
		return cfl_err_set(e, CFL_EPROTO, "the server's answer is not a job download");
	if (json_object_size(files) > JOB_FILES_MAX)
		return cfl_err_set(e, CFL_EPROTO, "the server sent %zu files (%d at most)",
		                   json_object_size(files), JOB_FILES_MAX);
	json_object_foreach (files, name, v) {
		if (!plain_name(name))
			return cfl_err_set(e, CFL_EPROTO, "the server sent a bad file name '%s'",
			                   name);
		if (!json_is_string(v))
			return cfl_err_set(e, CFL_EPROTO, "the server sent '%s' not as a string",
			                   name);
	}
	return 0;
}

static int save_files(json_t *files, const char *dir, struct cfl_err *e)
{
	char path[PATH_MAX];
	const char *name;
	json_t *v;

	json_object_foreach (files, name, v) {
		uint8_t *raw = NULL;
		size_t n = 0;
		int rc;

		if (cfl_base64_decode(json_string_value(v), json_string_length(v), &raw, &n) != 0)
			return cfl_err_set(e, CFL_EPROTO, "the server sent '%s' garbled", name);
		if (cfl__path_join(path, sizeof(path), dir, name) != 0)
			rc = cfl_err_set(e, CFL_ETOOBIG, "path too long in '%s'", dir);
		else
			rc = cfl__fs_write_file(path, raw, n, 0644, e);
		free(raw);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The files go to <transfer>/<the id asked for>/ (cfl_admin_send checked it is a plain name);
 * the answer must be for that job, or the server would pick the folder. */
static int save_download(struct cfl_admin *s, char *dir, size_t size, struct cfl_err *e)
{
	json_t *res = json_loadb(s->body, s->len, 0, NULL);
	const char *id = json_string_value(json_object_get(res, "id"));
	json_t *files = json_object_get(res, "files");
	int rc;

	if (id == NULL)
		rc = cfl_err_set(e, CFL_EPROTO, "the server's answer is not a job download");
	else if (strcmp(id, s->job) != 0)
		rc = cfl_err_set(e, CFL_EPROTO, "the server's answer is for job '%s', not '%s'", id,
		                 s->job);
	else
		rc = check_files(files, e);
	if (rc == 0 && snprintf(dir, size, "%s/%s", s->transfer, s->job) >= (int)size)
		rc = cfl_err_set(e, CFL_ETOOBIG, "path too long in '%s'", s->transfer);
	if (rc == 0 && (rc = cfl__fs_mkdirs(dir, 0700, e)) == 0)
		rc = save_files(files, dir, e);
	json_decref(res);
	if (rc != 0)
		cfl_err_prefix(e, "cannot save the download");
	return rc;
}

/* --- replies ------------------------------------------------------------------------------- */

static void finished(struct cfl_admin *s, int status, const char *reason)
{
	struct cfl_admin_reply r = {.cmd = s->line,
	                            .status = status,
	                            .error = reason != NULL ? reason : cfl_strerror(status),
	                            .body = status == 0 && s->body != NULL ? s->body : "",
	                            .len = status == 0 ? s->len : 0};
	struct cfl_err e = {0};
	char dir[PATH_MAX];

	s->waiting = 0;
	if (status == 0 && s->too_big) {
		r.status = CFL_ETOOBIG;
		r.error = "the reply is too large";
		r.body = "";
		r.len = 0;
	} else if (status == 0 && strcmp(s->verb, "download_job") == 0) {
		if (save_download(s, dir, sizeof(dir), &e) == 0) {
			r.saved_to = dir;
		} else {
			r.status = e.code;
			r.error = e.msg;
			r.body = "";
			r.len = 0;
		}
	}
	s->ops.reply(s, &r, s->ops.arg);
	reset_buffers(s);
	/* The server refused (EPROTO) or the command failed here: the session goes on. Anything
	 * else came from the connection, which is going. */
	if (status != 0 && status != CFL_EPROTO)
		cfl_admin_quit(s, status, r.error);
	else if (!s->ended)
		s->ops.ready(s, s->ops.arg);
}

static void body_data(void *st, const uint8_t *d, size_t n)
{
	struct cfl_admin *s = st;

	if (s->too_big || n == 0)
		return;
	if (s->len + n + 1 > BODY_MAX) {
		s->too_big = 1;
		return;
	}
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 65536;
		char *p;

		while (cap < s->len + n + 1)
			cap *= 2;
		p = realloc(s->body, cap);
		if (p == NULL) {
			s->too_big = 1;
			return;
		}
		s->body = p;
		s->cap = cap;
	}
	memcpy(s->body + s->len, d, n);
	s->len += n;
	s->body[s->len] = '\0';
}

static void body_end(void *st, int status, const char *reason)
{
	finished(st, status, reason);
}

static void on_reply(struct cfl_peer *p, int status, const char *reason, const struct cfl_frame *f,
                     int more, struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_admin *s = arg;

	(void)p;
	if (status != 0) {
		finished(s, status, reason);
		return;
	}
	body_data(s, f->body, f->body_len);
	if (more)
		*sink = (struct cfl_msg_sink){body_data, body_end, s};
	else
		finished(s, 0, NULL);
}

/* --- commands ------------------------------------------------------------------------------ */

static int pack_file(json_t *files, struct cfl_manifest *m, const char *path, const char *name,
                     struct cfl_err *e)
{
	char *buf = NULL, *b64 = NULL;
	size_t n = 0;
	int rc;

	if ((rc = cfl__fs_read_file(path, JOB_FILE_MAX, &buf, &n, e)) == 0 &&
	    (rc = cfl_base64_encode(buf, n, &b64)) != 0)
		cfl_err_set(e, rc, "out of memory");
	/* The digest of the very bytes that go out: what the file holds later does not matter. */
	if (rc == 0)
		rc = cfl_manifest_add(m, name, buf, n, e);
	if (rc == 0 && json_object_set_new(files, name, json_string(b64)) != 0)
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
	free(buf);
	free(b64);
	return rc;
}

/* The job's signature by this admin (docs/jobs.md "Signed jobs"): the manifest, signed with
 * the kit's client.key, and client.crt, as members of the bundle `b`. */
static int sign_job(struct cfl_admin *s, const struct cfl_manifest *m, json_t *b, struct cfl_err *e)
{
	struct cfl_pki_key *key = NULL;
	struct cfl_pki_cert *cert = NULL;
	struct cfl_manifest_signed sig = {0};
	int rc;

	if (s->key[0] == '\0' || s->cert[0] == '\0')
		return cfl_err_set(e, CFL_EINVAL, "no admin key to sign the job with");
	if ((rc = cfl_pki_key_load(s->key, &key, e)) == 0 &&
	    (rc = cfl_pki_cert_load(s->cert, &cert, e)) == 0 &&
	    (rc = cfl_manifest_sign(m, key, cert, &sig, e)) == 0 &&
	    (json_object_set_new(b, "manifest", json_string(sig.manifest)) != 0 ||
	     json_object_set_new(b, "signature", json_string(sig.signature)) != 0 ||
	     json_object_set_new(b, "certificate", json_string(sig.certificate)) != 0))
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
	if (rc != 0)
		cfl_err_prefix(e, "cannot sign the job");
	cfl_manifest_signed_release(&sig);
	cfl_pki_cert_free(cert);
	cfl_pki_key_free(key);
	return rc;
}

/* submit_job: the job folder's regular files as {"files": {name: base64}}, signed. */
static int pack_folder(struct cfl_admin *s, const char *dir, struct cfl_err *e)
{
	json_t *files = json_object(), *b;
	struct cfl_manifest *m = calloc(1, sizeof(*m));
	struct dirent *de;
	char path[PATH_MAX];
	DIR *d = opendir(dir);
	int rc = 0, count = 0;

	if (d == NULL || m == NULL) {
		if (d != NULL)
			closedir(d);
		json_decref(files);
		free(m);
		return m == NULL ? cfl_err_set(e, CFL_ENOMEM, "out of memory")
		                 : cfl_err_set(e, CFL_ENOENT, "cannot open job folder '%s'", dir);
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.' ||
		    cfl__path_join(path, sizeof(path), dir, de->d_name) != 0 ||
		    stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (++count > JOB_FILES_MAX)
			rc = cfl_err_set(e, CFL_ETOOBIG, "job folder '%s' has more than %d files",
			                 dir, JOB_FILES_MAX);
		else
			rc = pack_file(files, m, path, de->d_name, e);
	}
	closedir(d);
	b = json_pack("{s:o}", "files", files);
	if (rc == 0 && b == NULL)
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
	if (rc == 0)
		rc = sign_job(s, m, b, e);
	s->out = rc == 0 ? json_dumps(b, JSON_COMPACT) : NULL;
	json_decref(b);
	free(m);
	if (rc == 0 && s->out == NULL)
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
	if (rc != 0)
		return cfl_err_prefix(e, "cannot send the job");
	s->out_len = strlen(s->out);
	return 0;
}

static int out_read(void *src, uint8_t *buf, size_t len)
{
	struct cfl_admin *s = src;

	return (int)cfl__buf_take(s->out, s->out_len, &s->out_off, buf, len);
}

int cfl_admin_send(struct cfl_admin *s, const char *line, struct cfl_err *e)
{
	char what[PATH_MAX] = "";
	const char *cmd = line;
	struct cfl_header h;
	int rc;

	if (s->ended || s->peer == NULL)
		return cfl_err_set(e, CFL_ECLOSED, "not connected to the server");
	if (s->waiting)
		return cfl_err_set(e, CFL_EAGAIN, "a command is still waiting for its reply");
	if (line[0] == '\0' || strlen(line) >= sizeof(s->line))
		return cfl_err_set(e, CFL_EINVAL, "empty or too long command line");
	reset_buffers(s);
	snprintf(s->line, sizeof(s->line), "%s", line);
	s->verb[0] = '\0';
	sscanf(line, "%63s %4095s", s->verb, what);
	if (strcmp(s->verb, "download_job") == 0) {
		/* The id names the folder the files go to. */
		if (!plain_name(what))
			return cfl_err_set(e, CFL_EINVAL,
			                   "cannot download job '%s': a job id is a plain name",
			                   what);
		snprintf(s->job, sizeof(s->job), "%s", what);
	}
	if (strcmp(s->verb, "submit_job") == 0) {
		/* The server gets the bundle, not the local folder name. */
		if ((rc = pack_folder(s, what, e)) != 0)
			return rc;
		cmd = s->verb;
	}
	h = CFL_HDR(CFL_KEY_CMD, cmd);
	rc = cfl_peer_request_stream(s->peer, &(struct cfl_request){.topic = CFL_TOPIC_ADMIN,
	                                                            .hdrs = &h,
	                                                            .n_hdrs = 1,
	                                                            .body_len = s->out_len,
	                                                            .read = out_read,
	                                                            .src = s,
	                                                            .reply = on_reply,
	                                                            .arg = s});
	if (rc != 0) {
		reset_buffers(s);
		return cfl_err_set(e, rc, "cannot send the command: %s", cfl_strerror(rc));
	}
	s->waiting = 1;
	return 0;
}

void cfl_admin_quit(struct cfl_admin *s, int status, const char *reason)
{
	if (s->ended)
		return;
	s->ended = 1;
	if (s->done != NULL)
		s->done(status, reason, s->done_arg);
}

struct cfl_loop *cfl_admin_loop(struct cfl_admin *s)
{
	return s->loop;
}

/* --- the session's life, driven by the client (client.c) ----------------------------------------
 */

void cfl__admin_start(struct cfl_admin *s, struct cfl_peer *p, const struct cfl__admin_kit *kit,
                      cfl__admin_done_fn done, void *arg)
{
	s->peer = p;
	s->loop = cfl_msg_hub_loop(cfl_peer_hub(p));
	s->done = done;
	s->done_arg = arg;
	snprintf(s->transfer, sizeof(s->transfer), "%s", kit->transfer);
	snprintf(s->cert, sizeof(s->cert), "%s", kit->cert != NULL ? kit->cert : "");
	snprintf(s->key, sizeof(s->key), "%s", kit->key != NULL ? kit->key : "");
	if (!s->ended)
		s->ops.ready(s, s->ops.arg);
}

void cfl__admin_peer_down(struct cfl_admin *s)
{
	s->peer = NULL;
}

const struct cfl_admin_ops *cfl__admin_ops(const struct cfl_admin *s)
{
	return &s->ops;
}

struct cfl_admin *cfl__admin_new(const struct cfl_admin_ops *ops)
{
	struct cfl_admin *s = calloc(1, sizeof(*s));

	if (s != NULL)
		s->ops = *ops;
	return s;
}

void cfl__admin_free(struct cfl_admin *s)
{
	if (s == NULL)
		return;
	reset_buffers(s);
	free(s);
}

int cfl_admin_run(const char *kit_dir, const struct cfl_admin_ops *ops, struct cfl_err *e)
{
	struct cfl_admin *s = cfl__admin_new(ops);
	int rc;

	if (s == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	rc = cfl__client_run_admin(kit_dir, s, e);
	cfl__admin_free(s);
	return rc;
}
