/* The diagnostic topics a server answers, for tests, benchmarks and operators checking a
 * path: echo (the body back), sink (counts and hashes an upload of any size, answers its
 * length and SHA-256), source (streams `length` bytes of the test stream from `seed`), only
 * when `cfl server --diag` asks for them; and ping (an empty answer), always. */
#include "cfl/diag.h"

#include "cfl/digest.h"
#include "cfl/log.h"
#include "cfl/proto.h"
#include "teststream.h"
#include "util/num.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An empty answer, whatever the body: what a logged-in peer's heartbeat already gets, so it
 * costs nothing new; it is no mirror for a peer's traffic, as echo is. */
static void on_ping(struct cfl_peer *p, const struct cfl_frame *f, int more,
                    struct cfl_msg_sink *sink, void *arg)
{
	(void)arg;
	(void)sink;
	if (more) {
		cfl_peer_reply_error(p, f->id, "too_big", "ping takes single-frame bodies");
		return;
	}
	if (f->type == CFL_FRAME_T_REQUEST)
		cfl_peer_reply(p, f->id, NULL, 0, NULL, 0);
}

static void on_echo(struct cfl_peer *p, const struct cfl_frame *f, int more,
                    struct cfl_msg_sink *sink, void *arg)
{
	(void)arg;
	(void)sink;
	if (more) {
		cfl_peer_reply_error(p, f->id, "too_big", "echo takes single-frame bodies");
		return;
	}
	if (f->type == CFL_FRAME_T_REQUEST)
		cfl_peer_reply(p, f->id, NULL, 0, f->body, f->body_len);
}

struct sink_state {
	struct cfl_peer *peer;
	uint64_t req_id;
	uint64_t len;
	struct cfl_sha256 *sha;
};

static void sink_data(void *st, const uint8_t *d, size_t n)
{
	struct sink_state *s = st;

	cfl_sha256_update(s->sha, d, n);
	s->len += n;
}

static void sink_reply(struct sink_state *s)
{
	uint8_t md[CFL_SHA256_LEN];
	char hex[2 * CFL_SHA256_LEN + 1], len[24];
	struct cfl_header h[2];

	cfl_sha256_final(s->sha, md);
	cfl_hex(md, sizeof(md), hex);
	snprintf(len, sizeof(len), "%" PRIu64, s->len);
	h[0] = CFL_HDR(CFL_KEY_LENGTH, len);
	h[1] = CFL_HDR(CFL_KEY_SHA256, hex);
	cfl_peer_reply(s->peer, s->req_id, h, 2, NULL, 0);
}

static void sink_end(void *st, int status, const char *reason)
{
	struct sink_state *s = st;

	if (status == 0)
		sink_reply(s);
	else
		CFL_WARN("%s: upload failed after %" PRIu64 " bytes: %s", cfl_peer_name(s->peer),
		         s->len, reason ? reason : cfl_strerror(status));
	cfl_sha256_free(s->sha);
	free(s);
}

static void on_sink(struct cfl_peer *p, const struct cfl_frame *f, int more,
                    struct cfl_msg_sink *sink, void *arg)
{
	struct sink_state *s = calloc(1, sizeof(*s));

	(void)arg;
	if (s == NULL || (s->sha = cfl_sha256_new()) == NULL) {
		free(s);
		cfl_peer_reply_error(p, f->id, "no_memory", "out of memory");
		return;
	}
	s->peer = p;
	s->req_id = f->id;
	sink_data(s, f->body, f->body_len);
	if (!more) {
		sink_end(s, 0, NULL);
		return;
	}
	*sink = (struct cfl_msg_sink){sink_data, sink_end, s};
}

/* A decimal header value, digits only ("-1" is not 2^64-1, an endless stream). */
static int header_u64(const struct cfl_frame *f, const char *key, uint64_t *out)
{
	char buf[32];

	if (cfl_frame_header_str(f, key, buf, sizeof(buf)) != 0 || buf[0] == '\0')
		return CFL_ENOENT;
	return cfl__num_u64(buf, UINT64_MAX, out) == 0 ? 0 : CFL_EINVAL;
}

static int source_read(void *src, uint8_t *buf, size_t len)
{
	return (int)cfl__tstream_fill(src, buf, len);
}

static void source_done(struct cfl_conn *c, uint64_t id, int status, void *src)
{
	(void)c;
	(void)id;
	if (status != 0)
		CFL_WARN("download stream ended early: %s", cfl_strerror(status));
	free(src);
}

static void on_source(struct cfl_peer *p, const struct cfl_frame *f, int more,
                      struct cfl_msg_sink *sink, void *arg)
{
	struct cfl__tstream *ts;
	uint64_t len = 0, seed = 0;

	(void)arg;
	(void)more;
	(void)sink;
	if (header_u64(f, CFL_KEY_LENGTH, &len) != 0 || header_u64(f, CFL_KEY_SEED, &seed) != 0) {
		cfl_peer_reply_error(p, f->id, "bad_request", "source needs length and seed");
		return;
	}
	ts = malloc(sizeof(*ts));
	if (ts == NULL) {
		cfl_peer_reply_error(p, f->id, "no_memory", "out of memory");
		return;
	}
	cfl__tstream_init(ts, seed, len);
	if (cfl_peer_reply_stream(p, f->id, NULL, 0, len, source_read, ts, source_done) != 0)
		free(ts);
}

int cfl_diag_serve_ping(struct cfl_msg_hub *hub, struct cfl_err *e)
{
	int rc = cfl_msg_hub_handle(hub, CFL_TOPIC_PING, on_ping, NULL);

	return rc == 0 ? 0 : cfl_err_set(e, rc, "cannot serve 'ping': %s", cfl_strerror(rc));
}

int cfl_diag_serve(struct cfl_msg_hub *hub, struct cfl_err *e)
{
	static const struct {
		const char *topic;
		cfl_msg_handler fn;
	} topics[] = {{CFL_TOPIC_ECHO, on_echo},
	              {CFL_TOPIC_SINK, on_sink},
	              {CFL_TOPIC_SOURCE, on_source}};
	int rc = cfl_diag_serve_ping(hub, e);

	for (size_t i = 0; rc == 0 && i < sizeof(topics) / sizeof(topics[0]); i++) {
		rc = cfl_msg_hub_handle(hub, topics[i].topic, topics[i].fn, NULL);
		if (rc != 0)
			return cfl_err_set(e, rc, "cannot serve '%s': %s", topics[i].topic,
			                   cfl_strerror(rc));
	}
	/* A site's echo answers messages routed to it (cfl client --message --to): test traffic
	 * between sites, which only a server serving the test topics passes on. */
	if (rc == 0 && (rc = cfl_msg_hub_route(hub, CFL_TOPIC_ECHO)) != 0)
		return cfl_err_set(e, rc, "cannot route 'echo': %s", cfl_strerror(rc));
	return rc;
}
