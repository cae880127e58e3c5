/* The frame codec: docs/protocol.md, "Frames", is the specification this file implements.
 *
 * The decoder and the encoder check the same rules through the same functions, so any frame
 * the encoder produces decodes, and any frame the decoder accepts re-encodes to the very same
 * bytes (there is exactly one encoding of each frame; fuzz/fuzz_frame.c holds us to it). */
#include "cfl/frame.h"
#include "cfl/err.h"
#include "net/frame_int.h"
#include "util/reader.h"

#include <limits.h>
#include <string.h>

#define ANY            SIZE_MAX
#define GOAWAY_MAX     1024 /* reason bytes */
#define PING_MAX       8    /* opaque bytes a PONG echoes */
#define HEADERS_MIN    2    /* the count alone */
#define HEADER_SECTION 0xffff

/* What each type may carry. Index = type; a NULL name is an unknown type. */
struct type_rule {
	const char *name;
	uint16_t flags;  /* flag bits allowed */
	uint8_t headers; /* carries a header section (at least its count) */
	uint8_t ref;     /* uses the ref field; else it must be 0 */
	size_t min_body; /* body bytes in this frame */
	size_t max_body;
};

static const struct type_rule rules[] = {
        [CFL_FRAME_T_REQUEST] = {"REQUEST", CFL_FRAME_F_MORE, 1, 0, 0, ANY},
        [CFL_FRAME_T_REPLY] = {"REPLY", CFL_FRAME_F_MORE | CFL_FRAME_F_ERROR, 1, 1, 0, ANY},
        [CFL_FRAME_T_ONEWAY] = {"ONEWAY", CFL_FRAME_F_MORE, 1, 0, 0, ANY},
        [CFL_FRAME_T_CHUNK] = {"CHUNK", CFL_FRAME_F_MORE, 0, 1, 0, ANY},
        [CFL_FRAME_T_WINDOW] = {"WINDOW", 0, 0, 1, 8, 8},
        [CFL_FRAME_T_PING] = {"PING", 0, 0, 0, 0, PING_MAX},
        [CFL_FRAME_T_PONG] = {"PONG", 0, 0, 0, 0, PING_MAX},
        [CFL_FRAME_T_GOAWAY] = {"GOAWAY", 0, 0, 0, 0, GOAWAY_MAX},
        [CFL_FRAME_T_CANCEL] = {"CANCEL", 0, 0, 1, 0, 0},
};

static const struct type_rule *rule(unsigned type)
{
	if (type >= sizeof(rules) / sizeof(rules[0]) || rules[type].name == NULL)
		return NULL;
	return &rules[type];
}

const char *cfl_frame_type_name(int type)
{
	const struct type_rule *t = type >= 0 ? rule((unsigned)type) : NULL;

	return t != NULL ? t->name : "UNKNOWN";
}

/* The fixed header's fields against the type's rules; 0 if they fit, else -1. */
static int check_fixed(unsigned type, unsigned flags, uint64_t ref, size_t hlen, size_t payload)
{
	const struct type_rule *t = rule(type);
	size_t body;

	if (t == NULL || (flags & ~(unsigned)t->flags) != 0 || (!t->ref && ref != 0))
		return -1;
	if (t->headers ? hlen < HEADERS_MIN : hlen != 0)
		return -1;
	if (hlen > payload)
		return -1;
	body = payload - hlen;
	if (body < t->min_body || body > t->max_body)
		return -1;
	/* An empty CHUNK that promises more moves nothing: refusing it keeps "progress" (which
	 * resets a stream's idle timer) meaning bytes. */
	if (type == CFL_FRAME_T_CHUNK && (flags & CFL_FRAME_F_MORE) && body == 0)
		return -1;
	return 0;
}

/* Keys are short lowercase tokens so that they compare byte for byte and print safely. */
static int key_ok(const char *k, size_t n)
{
	size_t i;

	if (n < 1 || n > CFL_FRAME_MAX_KEY)
		return 0;
	for (i = 0; i < n; i++) {
		char c = k[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

/* Values are any bytes but NUL, so a C consumer may copy one into a string without surprise. */
static int val_ok(const uint8_t *v, size_t n)
{
	if (n > CFL_FRAME_MAX_VALUE)
		return 0;
	return n == 0 || memchr(v, 0, n) == NULL;
}

static const struct cfl_header *find(const struct cfl_frame *f, size_t n, const char *key,
                                     size_t key_len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (f->headers[i].key_len == key_len &&
		    memcmp(f->headers[i].key, key, key_len) == 0)
			return &f->headers[i];
	return NULL;
}

const struct cfl_header *cfl_frame_header(const struct cfl_frame *f, const char *key)
{
	if (f == NULL || key == NULL || f->n_headers > CFL_FRAME_MAX_HEADERS)
		return NULL;
	return find(f, f->n_headers, key, strlen(key));
}

/* The header an ERROR reply must have (protocol.md 1.3). */
static const struct cfl_header *find_status(const struct cfl_frame *f)
{
	return find(f, f->n_headers, CFL_FRAME_KEY_STATUS, sizeof(CFL_FRAME_KEY_STATUS) - 1);
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF, and no
 * NUL. A GOAWAY reason ends up in logs; it must not smuggle anything else there. */
static int utf8_ok(const uint8_t *s, size_t n)
{
	static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
	size_t i = 0, k, len;
	uint32_t cp;

	while (i < n) {
		uint8_t c = s[i];

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0)
			len = 2, cp = c & 0x1fu;
		else if ((c & 0xf0) == 0xe0)
			len = 3, cp = c & 0x0fu;
		else if ((c & 0xf8) == 0xf0)
			len = 4, cp = c & 0x07u;
		else
			return 0;
		if (len > n - i)
			return 0;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3fu);
		}
		if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

/* Rules that need the headers or the body; 0 if they hold, else -1. */
static int check_content(const struct cfl_frame *f)
{
	if ((f->flags & CFL_FRAME_F_ERROR) && find_status(f) == NULL)
		return -1;
	if (f->type == CFL_FRAME_T_GOAWAY && !utf8_ok(f->body, f->body_len))
		return -1;
	if (f->type == CFL_FRAME_T_WINDOW) {
		struct cfl_reader r;

		cfl__rd_init(&r, f->body, f->body_len);
		if (cfl__rd_get_u64(&r) == 0) /* a grant of nothing is not progress either */
			return -1;
	}
	return 0;
}

/* --- decoding ------------------------------------------------------------------------ */

struct fixed {
	uint8_t type;
	uint16_t flags;
	uint16_t hlen;
	uint32_t payload;
	uint64_t id, ref;
};

/* Reads and checks the 32-byte fixed header; 0, CFL_EAGAIN, CFL_EPROTO or CFL_ETOOBIG. */
static int read_fixed(struct cfl_reader *r, size_t max_payload, struct fixed *h)
{
	const uint8_t *magic = cfl__rd_get_bytes(r, 2);
	uint8_t version = cfl__rd_get_u8(r);
	uint32_t reserved;

	h->type = cfl__rd_get_u8(r);
	h->flags = cfl__rd_get_u16(r);
	h->hlen = cfl__rd_get_u16(r);
	h->payload = cfl__rd_get_u32(r);
	reserved = cfl__rd_get_u32(r);
	h->id = cfl__rd_get_u64(r);
	h->ref = cfl__rd_get_u64(r);
	if (r->err != 0)
		return CFL_EAGAIN;
	if (magic[0] != 'C' || magic[1] != 'F' || version != CFL_FRAME_VERSION || reserved != 0)
		return CFL_EPROTO;
	if (check_fixed(h->type, h->flags, h->ref, h->hlen, h->payload) != 0)
		return CFL_EPROTO;
	/* The whole frame's length must also fit the int that cfl_frame_decode() returns. */
	if (h->payload > max_payload || h->payload > (uint32_t)(INT_MAX - CFL_FRAME_HEAD_LEN))
		return CFL_ETOOBIG;
	return 0;
}

int cfl_frame_peek(const uint8_t *buf, size_t len, size_t max_payload, size_t *frame_len)
{
	struct cfl_reader r;
	struct fixed h;
	int rc;

	if (frame_len == NULL)
		return CFL_EINVAL;
	cfl__rd_init(&r, buf, len);
	rc = read_fixed(&r, max_payload, &h);
	if (rc == 0)
		*frame_len = CFL_FRAME_HEAD_LEN + (size_t)h.payload;
	return rc;
}

/* Parses exactly `r`'s bytes as a header section into f->headers. 0 or CFL_EPROTO. */
static int read_headers(struct cfl_reader *r, struct cfl_frame *f)
{
	size_t i, count = cfl__rd_get_u16(r);

	if (count > CFL_FRAME_MAX_HEADERS)
		return CFL_EPROTO;
	for (i = 0; i < count; i++) {
		struct cfl_header *h = &f->headers[i];

		h->key_len = cfl__rd_get_u8(r);
		h->key = (const char *)cfl__rd_get_bytes(r, h->key_len);
		h->val_len = cfl__rd_get_u16(r);
		h->val = cfl__rd_get_bytes(r, h->val_len);
		if (r->err != 0 || !key_ok(h->key, h->key_len) || !val_ok(h->val, h->val_len) ||
		    find(f, i, h->key, h->key_len) != NULL)
			return CFL_EPROTO;
	}
	/* The declared section length must be exactly what the entries use. */
	if (r->err != 0 || cfl__rd_left(r) != 0)
		return CFL_EPROTO;
	f->n_headers = count;
	return 0;
}

int cfl_frame_decode(const uint8_t *buf, size_t len, size_t max_payload, struct cfl_frame *out)
{
	struct cfl_reader r, hr;
	struct fixed h;
	const uint8_t *section;
	int rc;

	if (out == NULL)
		return CFL_EINVAL;
	cfl__rd_init(&r, buf, len);
	rc = read_fixed(&r, max_payload, &h);
	if (rc == CFL_EAGAIN)
		return 0;
	if (rc != 0)
		return rc;
	if (cfl__rd_left(&r) < h.payload)
		return 0;
	out->type = h.type;
	out->flags = h.flags;
	out->id = h.id;
	out->ref = h.ref;
	out->n_headers = 0;
	section = cfl__rd_get_bytes(&r, h.hlen);
	if (h.hlen > 0) {
		cfl__rd_init(&hr, section, h.hlen);
		if (read_headers(&hr, out) != 0)
			return CFL_EPROTO;
	}
	out->body_len = h.payload - h.hlen;
	out->body = cfl__rd_get_bytes(&r, out->body_len);
	if (r.err != 0 || check_content(out) != 0)
		return CFL_EPROTO;
	return (int)r.off;
}

/* --- encoding ------------------------------------------------------------------------ */

/* Validates `f` for a body of `body_len` bytes and computes its header section length.
 * Returns 0; CFL_ETOOBIG if the section or the payload overflow their length fields;
 * CFL_EINVAL if the decoder would reject the frame for any other reason. */
static int check_frame(const struct cfl_frame *f, size_t body_len, size_t *hlen)
{
	const struct type_rule *t = rule(f->type);
	size_t i, n = HEADERS_MIN;

	if (t == NULL || f->n_headers > CFL_FRAME_MAX_HEADERS || (!t->headers && f->n_headers))
		return CFL_EINVAL;
	for (i = 0; i < f->n_headers; i++) {
		const struct cfl_header *h = &f->headers[i];

		if (h->key == NULL || (h->val == NULL && h->val_len > 0) ||
		    !key_ok(h->key, h->key_len) || !val_ok(h->val, h->val_len) ||
		    find(f, i, h->key, h->key_len) != NULL)
			return CFL_EINVAL;
		n += 1 + h->key_len + 2 + h->val_len;
	}
	*hlen = t->headers ? n : 0;
	if (*hlen > HEADER_SECTION || body_len > UINT32_MAX - *hlen)
		return CFL_ETOOBIG;
	if (check_fixed(f->type, f->flags, f->ref, *hlen, *hlen + body_len) != 0)
		return CFL_EINVAL;
	if ((f->flags & CFL_FRAME_F_ERROR) && find_status(f) == NULL)
		return CFL_EINVAL;
	return 0;
}

/* Writes the fixed header and the header section; the writer keeps any error. */
static void write_head(struct cfl_writer *w, const struct cfl_frame *f, size_t hlen,
                       size_t body_len)
{
	size_t i;

	cfl__wr_put_bytes(w, "CF", 2);
	cfl__wr_put_u8(w, CFL_FRAME_VERSION);
	cfl__wr_put_u8(w, f->type);
	cfl__wr_put_u16(w, f->flags);
	cfl__wr_put_u16(w, (uint16_t)hlen);
	cfl__wr_put_u32(w, (uint32_t)(hlen + body_len));
	cfl__wr_put_u32(w, 0);
	cfl__wr_put_u64(w, f->id);
	cfl__wr_put_u64(w, f->ref);
	if (hlen == 0)
		return;
	cfl__wr_put_u16(w, (uint16_t)f->n_headers);
	for (i = 0; i < f->n_headers; i++) {
		const struct cfl_header *h = &f->headers[i];

		cfl__wr_put_u8(w, (uint8_t)h->key_len);
		cfl__wr_put_bytes(w, h->key, h->key_len);
		cfl__wr_put_u16(w, (uint16_t)h->val_len);
		cfl__wr_put_bytes(w, h->val, h->val_len);
	}
}

/* The whole frame into `w`; 0 or CFL_EINVAL / CFL_ETOOBIG. */
static int write_frame(struct cfl_writer *w, const struct cfl_frame *f)
{
	size_t hlen;
	int rc;

	if (f == NULL || (f->body == NULL && f->body_len > 0))
		return CFL_EINVAL;
	rc = check_frame(f, f->body_len, &hlen);
	if (rc != 0)
		return rc;
	if (check_content(f) != 0)
		return CFL_EINVAL;
	write_head(w, f, hlen, f->body_len);
	cfl__wr_put_bytes(w, f->body, f->body_len);
	return w->err;
}

int cfl__frame_encode_sized(uint8_t *dst, size_t size, const struct cfl_frame *f)
{
	struct cfl_writer w;
	size_t hlen = size - CFL_FRAME_HEAD_LEN - f->body_len;

	if (size < CFL_FRAME_HEAD_LEN + f->body_len || size > INT_MAX)
		return CFL_ETOOBIG;
	cfl__wr_init(&w, dst, size);
	write_head(&w, f, hlen, f->body_len);
	cfl__wr_put_bytes(&w, f->body, f->body_len);
	return w.err != 0 ? w.err : (int)w.off;
}

size_t cfl_frame_encoded_size(const struct cfl_frame *f)
{
	struct cfl_writer w;

	cfl__wr_init_count(&w);
	return write_frame(&w, f) == 0 ? w.off : 0;
}

int cfl_frame_encode(uint8_t *dst, size_t cap, const struct cfl_frame *f)
{
	struct cfl_writer w;
	int rc;

	/* Capping the room at INT_MAX makes a frame too long for the return value CFL_ETOOBIG. */
	cfl__wr_init(&w, dst, cap > INT_MAX ? INT_MAX : cap);
	rc = write_frame(&w, f);
	return rc != 0 ? rc : (int)w.off;
}

int cfl_frame_encode_head(uint8_t *dst, size_t cap, const struct cfl_frame *f, size_t body_len)
{
	struct cfl_writer w;
	size_t hlen;
	int rc;

	if (f == NULL)
		return CFL_EINVAL;
	rc = check_frame(f, body_len, &hlen);
	if (rc != 0)
		return rc;
	cfl__wr_init(&w, dst, cap);
	write_head(&w, f, hlen, body_len);
	return w.err != 0 ? w.err : (int)w.off;
}
