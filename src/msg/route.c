/* Routing: the server passes small messages between cells (docs/protocol.md §4). Each hop
 * carries the authentication headers of its own link, never the sender's. */
#include "hub_int.h"

#include "cfl/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A message for another cell: the server passes small messages on (replies come back by way
 * of a request of its own). Streams are not routed. The sender's authentication headers stay
 * behind: each hop carries the headers of its own link (SPEC §5: the server authenticates its
 * own messages). */
struct route {
	char from_name[CFL_MSG_NAME_MAX];
	uint64_t from_id;
};

static int key_is(const struct cfl_header *h, const char *key)
{
	return h->key_len == strlen(key) && memcmp(h->key, key, h->key_len) == 0;
}

static int is_auth_key(const struct cfl_header *h)
{
	return key_is(h, CFL_KEY_CLIENT_NAME) || key_is(h, CFL_KEY_TOKEN) ||
	       key_is(h, CFL_KEY_TOKEN_SIGNATURE);
}

/* f's headers without the authentication ones, into out[] (room for CFL_FRAME_MAX_HEADERS). */
static size_t strip_auth(const struct cfl_frame *f, struct cfl_header *out)
{
	size_t n = 0;

	for (size_t i = 0; i < f->n_headers; i++) {
		if (!is_auth_key(&f->headers[i]))
			out[n++] = f->headers[i];
	}
	return n;
}

static void routed_reply(struct cfl_peer *to, int status, const char *reason,
                         const struct cfl_frame *f, int more, struct cfl_msg_sink *sink, void *arg)
{
	struct route *r = arg;
	struct cfl_peer *from = cfl_msg_hub_find(to->hub, r->from_name);
	struct cfl_header h[CFL_FRAME_MAX_HEADERS];

	(void)sink;
	if (from != NULL) {
		if (status != 0 || more || f == NULL) {
			cfl_peer_reply_error(from, r->from_id, "route_failed",
			                     more ? "streamed replies are not routed"
			                          : (reason ? reason : "failed"));
		} else {
			size_t n = strip_auth(f, h);

			if (n > MAX_OUT_HDRS)
				n = MAX_OUT_HDRS;
			cfl_peer_reply(from, r->from_id, h, n, f->body, f->body_len);
		}
	}
	free(r);
}

/* The frame to pass on: this link's authentication, then the origin's other headers. */
/* The frame to pass on: this link's authentication, `src` set to the sender's logged-in name
 * (whatever it claimed), then the origin's other headers. */
static void routed_frame(struct cfl_frame *g, const struct cfl_frame *f, struct cfl_peer *from,
                         struct cfl_peer *to)
{
	*g = *f;
	g->n_headers = 0;
	for (size_t i = 0; i < to->n_auth; i++)
		g->headers[g->n_headers++] = to->auth[i];
	g->headers[g->n_headers++] = CFL_HDR(CFL_KEY_SRC, from->name);
	for (size_t i = 0; i < f->n_headers && g->n_headers < CFL_FRAME_MAX_HEADERS; i++) {
		const struct cfl_header *h = &f->headers[i];

		if (!is_auth_key(h) && !key_is(h, CFL_KEY_SRC))
			g->headers[g->n_headers++] = *h;
	}
}

/* Only application topics, and those the hub's owner named (cfl_msg_hub_route), travel
 * between sites: the server's own topics (jobs, tasks, shutdown, login, admin) never do, so a
 * site cannot pass for the server. */
static int routable(const struct cfl_msg_hub *h, const struct cfl_frame *f)
{
	const struct cfl_header *t = cfl_frame_header(f, CFL_KEY_TOPIC);
	const size_t app = sizeof(CFL_TOPIC_APP_PREFIX) - 1;

	if (t == NULL)
		return 0;
	if (t->val_len > app && memcmp(t->val, CFL_TOPIC_APP_PREFIX, app) == 0)
		return 1;
	for (size_t i = 0; i < h->n_routed; i++)
		if (t->val_len == strlen(h->routed[i]) &&
		    memcmp(t->val, h->routed[i], t->val_len) == 0)
			return 1;
	return 0;
}

int cfl__msg_route(struct cfl_peer *p, const struct cfl_frame *f, int more, const char *dst)
{
	struct cfl_peer *to = cfl_msg_hub_find(p->hub, dst);
	struct cfl_frame g;
	struct pending *q;
	struct route *r;
	int rc;

	if (to == NULL || more || !routable(p->hub, f) || p->name[0] == '\0') {
		if (f->type == CFL_FRAME_T_REQUEST)
			cfl_peer_reply_error(p, f->id, "no_route",
			                     to == NULL ? "no such cell connected"
			                     : more     ? "streams are not routed"
			                                : "only app.* topics and those this server "
			                                  "routes travel between cells");
		if (more)
			cfl_conn_cancel(p->conn, f->id);
		return 0;
	}
	routed_frame(&g, f, p, to);
	if (f->type == CFL_FRAME_T_ONEWAY) {
		g.id = 0;
		return cfl_conn_send(to->conn, &g);
	}
	r = calloc(1, sizeof(*r));
	q = r != NULL ? cfl__pending_new(to, 0, routed_reply, r) : NULL;
	if (q == NULL) {
		free(r);
		return cfl_peer_reply_error(p, f->id, "no_route", "out of memory");
	}
	snprintf(r->from_name, sizeof(r->from_name), "%s", p->name);
	r->from_id = f->id;
	g.id = q->id;
	rc = cfl_conn_send(to->conn, &g);
	if (rc != 0) {
		cfl__pending_unlink(q);
		free(q);
		free(r);
		return cfl_peer_reply_error(p, f->id, "no_route", "send failed");
	}
	cfl__pending_arm(q);
	return 0;
}
