/* Admin commands on the server: `check_status client|server`, `remove_client NAME`.
 * Only sessions that logged in with an admin certificate may call them. */
#include "server_int.h"

#include "cfl/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LIST 10000

struct admin {
	struct cfl_auth_server *auth;
	struct cfl__server_info info;
};

static void iso_time(int64_t unix_ms, char *buf, size_t size)
{
	time_t t = (time_t)(unix_ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *session_json(const struct cfl_auth_session_info *i)
{
	char seen[32], exp[32];

	iso_time(i->last_seen_ms, seen, sizeof(seen));
	iso_time(i->token_expiry * 1000, exp, sizeof(exp));
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s}", "name", i->name, "address",
			 i->addr, "via", i->via, "connection_security", cfl_conn_sec_name(i->mode),
			 "connected", i->connected, "last_heartbeat", seen, "token_expiry", exp,
			 "role", i->role);
}

static json_t *list_sessions(struct admin *a, enum cfl_auth_kind kind)
{
	struct cfl_auth_session_info *v = calloc(MAX_LIST, sizeof(*v));
	json_t *arr = json_array();
	size_t n;

	if (v == NULL || arr == NULL) {
		free(v);
		json_decref(arr);
		return NULL;
	}
	n = cfl_auth_server_sessions(a->auth, kind, v, MAX_LIST);
	for (size_t i = 0; i < n && i < MAX_LIST; i++)
		json_array_append_new(arr, session_json(&v[i]));
	free(v);
	return arr;
}

static json_t *check_status(struct admin *a, const char *what, char *err, size_t en)
{
	if (strcmp(what, "client") == 0)
		return json_pack("{s:o}", "clients", list_sessions(a, CFL_AUTH_CLIENT));
	if (strcmp(what, "server") == 0) {
		json_t *clients = list_sessions(a, CFL_AUTH_CLIENT);
		json_t *admins = list_sessions(a, CFL_AUTH_ADMIN);
		char started[32];
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		iso_time(a->info.started_ms, started, sizeof(started));
		return json_pack("{s:{s:s, s:s, s:s, s:s, s:I, s:I, s:I}}", "server", "name",
				 a->info.name, "project", a->info.project, "status", "started",
				 "started_at", started, "uptime_s",
				 (json_int_t)(ts.tv_sec - a->info.started_ms / 1000), "clients",
				 (json_int_t)json_array_size(clients), "admins",
				 (json_int_t)json_array_size(admins));
	}
	snprintf(err, en, "usage: check_status server|client");
	return NULL;
}

/* Roles (authorization.json.default): project_admin may do everything; the others may look. */
static json_t *run(struct admin *a, const char *role, const char *cmd, char *err, size_t en)
{
	char verb[64] = "", arg[256] = "";

	if (sscanf(cmd, "%63s %255s", verb, arg) < 1) {
		snprintf(err, en, "empty command");
		return NULL;
	}
	if (strcmp(verb, "check_status") == 0)
		return check_status(a, arg, err, en);
	if (strcmp(verb, "remove_client") == 0) {
		if (strcmp(role, "project_admin") != 0) {
			snprintf(err, en, "role '%s' may not remove clients", role);
			return NULL;
		}
		if (cfl_auth_server_remove(a->auth, arg, "removed by an admin") != 0) {
			snprintf(err, en, "no client '%s'", arg);
			return NULL;
		}
		return json_pack("{s:s}", "removed", arg);
	}
	snprintf(err, en, "unknown command '%s'", verb);
	return NULL;
}

static void on_admin(struct cfl_peer *p, const struct cfl_frame *f, int more,
		     struct cfl_msg_sink *sink, void *arg)
{
	struct admin *a = arg;
	enum cfl_auth_kind kind;
	const char *role = "";
	const char *who = cfl_auth_server_identity(p, &kind, &role);
	char cmd[1024], err[512] = "";
	json_t *res;
	char *text;

	(void)more;
	(void)sink;
	if (f->type != CFL_FRAME_T_REQUEST)
		return;
	if (who == NULL || kind != CFL_AUTH_ADMIN) {
		CFL_WARN("admin command from a non-admin session '%s' refused", who ? who : "-");
		cfl_peer_reply_error(p, f->id, "forbidden", "admin commands need an admin login");
		return;
	}
	cfl_frame_header_str(f, "cmd", cmd, sizeof(cmd));
	CFL_INFO("admin %s: %s", who, cmd);
	res = run(a, role, cmd, err, sizeof(err));
	if (res == NULL) {
		cfl_peer_reply_error(p, f->id, "failed", err[0] ? err : "failed");
		return;
	}
	text = json_dumps(res, JSON_COMPACT);
	json_decref(res);
	if (text == NULL) {
		cfl_peer_reply_error(p, f->id, "failed", "out of memory");
		return;
	}
	cfl_peer_reply(p, f->id, NULL, 0, text, strlen(text));
	free(text);
}

int cfl__server_admin_init(struct cfl_msg_hub *hub, struct cfl_auth_server *auth,
			   const struct cfl__server_info *info)
{
	static struct admin a; /* one server per process */

	a.auth = auth;
	a.info = *info;
	return cfl_msg_hub_handle(hub, "admin", on_admin, &a);
}
