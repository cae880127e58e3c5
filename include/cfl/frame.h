/* The versioned binary frame of cfl's messaging layer (docs/protocol.md, "Frames").
 *
 * A frame is a fixed 32-byte header, an optional header section (key/value strings, only on
 * REQUEST, REPLY and ONEWAY) and a body. The decoder is zero-copy: a decoded `struct cfl_frame`
 * points into the caller's input buffer and is valid only as long as that buffer is. Nothing in
 * this module allocates, blocks or keeps state, so every function may be called from any thread
 * on distinct buffers.
 *
 * Errors are negative CFL_E* codes (cfl/err.h): CFL_EPROTO for input that breaks the format,
 * CFL_ETOOBIG for a frame over the caller's size limit or a buffer too small to encode into,
 * CFL_EINVAL for a frame the encoder is asked to produce that the decoder would reject. */
#ifndef CFL_FRAME_H
#define CFL_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CFL_FRAME_VERSION     1
#define CFL_FRAME_HEAD_LEN    32 /* the fixed header */
#define CFL_FRAME_MAX_HEADERS 64
#define CFL_FRAME_MAX_KEY     64   /* key bytes, at least 1 */
#define CFL_FRAME_MAX_VALUE   8192 /* value bytes, may be 0 */

/* Body bytes a sender puts in one frame; larger bodies continue in CHUNK frames. */
#define CFL_FRAME_CHUNK 1048576 /* 1 MiB */
/* Payload (header section + body) limits a receiver passes to the decoder: small before the
 * peer has logged in, one chunk plus room for the header section after. */
#define CFL_FRAME_MAX_PAYLOAD_PRELOGIN 65536   /* 64 KiB */
#define CFL_FRAME_MAX_PAYLOAD          1114112 /* CFL_FRAME_CHUNK + 64 KiB */
/* Flow-control credit a receiver grants each stream up front (docs/protocol.md, streaming). */
#define CFL_FRAME_INITIAL_WINDOW 8388608 /* 8 MiB */

/* Frame types, named T_ because CFL_FRAME_CHUNK is the chunk size. */
enum cfl_frame_type {
	CFL_FRAME_T_REQUEST = 1, /* expects a REPLY whose ref is this id */
	CFL_FRAME_T_REPLY = 2,   /* ref = the request's id */
	CFL_FRAME_T_ONEWAY = 3,  /* no reply */
	CFL_FRAME_T_CHUNK = 4,   /* more body of message `ref` */
	CFL_FRAME_T_WINDOW = 5,  /* body: u64 bytes of credit granted for stream `ref` */
	CFL_FRAME_T_PING = 6,    /* body: 0-8 opaque bytes */
	CFL_FRAME_T_PONG = 7,    /* echoes the PING's id and body */
	CFL_FRAME_T_GOAWAY = 8, /* body: UTF-8 reason (<= 1024 bytes); the sender closes after it */
	CFL_FRAME_T_CANCEL = 9  /* abandon stream `ref` */
};

enum cfl_frame_flag {
	CFL_FRAME_F_MORE = 1 << 0, /* the body continues in CHUNK frames */
	CFL_FRAME_F_ERROR = 1 << 1 /* a REPLY reporting failure, `status` header says which */
};

/* One header. `key` is NOT NUL-terminated: use key_len. */
struct cfl_header {
	const char *key;
	size_t key_len;
	const uint8_t *val;
	size_t val_len;
};

/* The header keys the frame layer itself reads: `status` names the failure of a REPLY with
 * ERROR (1.3), `body-length` announces a stream's total (2.2). The rest of the protocol's words
 * are in cfl/proto.h. */
#define CFL_FRAME_KEY_STATUS      "status"
#define CFL_FRAME_KEY_BODY_LENGTH "body-length"

/* A header as a value, its key's length counted by sizeof: `key` must be a string literal or a
 * constant naming one (CFL_KEY_* of cfl/proto.h); anything else does not compile. CFL_HDR takes
 * a NUL-terminated string value (evaluated once), CFL_HDR_BYTES a pointer and a length. The
 * result points at the caller's key and value, like every struct cfl_header. */
#define CFL_HDR(key, str) cfl__hdr_str("" key, sizeof("" key) - 1, (str))
#define CFL_HDR_BYTES(key, ptr, len) \
	((struct cfl_header){"" key, sizeof("" key) - 1, (const uint8_t *)(ptr), (len)})

/* For CFL_HDR only. */
static inline struct cfl_header cfl__hdr_str(const char *key, size_t key_len, const char *str)
{
	return (struct cfl_header){key, key_len, (const uint8_t *)str, strlen(str)};
}

/* A frame as a value. Decoded: every pointer aliases the input buffer. To encode: fill it in
 * (zero-initialise it first), pointing at the caller's own memory. */
struct cfl_frame {
	uint8_t type;   /* enum cfl_frame_type */
	uint16_t flags; /* enum cfl_frame_flag bits */
	uint64_t id;    /* the sender's message id */
	uint64_t ref;   /* see enum cfl_frame_type; 0 where not used */
	size_t n_headers;
	struct cfl_header headers[CFL_FRAME_MAX_HEADERS];
	const uint8_t *body;
	size_t body_len;
};

/* Checks the fixed header at the start of `buf`. Returns 0 and sets *frame_len to the whole
 * frame's length (32 + payload) once the first 32 bytes are there and valid; CFL_EAGAIN if
 * fewer than 32 bytes are given; CFL_ETOOBIG if the payload is over `max_payload` (so a
 * receiver need never buffer it); CFL_EPROTO for any other violation. */
int cfl_frame_peek(const uint8_t *buf, size_t len, size_t max_payload, size_t *frame_len);

/* Decodes one frame from the start of `buf` into *out. Returns the bytes consumed (> 0), 0 if
 * the frame is not complete yet (call again with more bytes), or CFL_ETOOBIG / CFL_EPROTO as
 * cfl_frame_peek() and for a malformed header section or body. *out points into `buf` and is
 * undefined unless the return is > 0. Frames too long for an int are CFL_ETOOBIG. */
int cfl_frame_decode(const uint8_t *buf, size_t len, size_t max_payload, struct cfl_frame *out);

/* Returns the header named `key` (a NUL-terminated string), or NULL. The result points into
 * `f`. Keys are unique in any frame the decoder accepts. */
const struct cfl_header *cfl_frame_header(const struct cfl_frame *f, const char *key);

/* Bytes cfl_frame_encode() would write for `f`, or 0 if `f` is not a valid frame. */
size_t cfl_frame_encoded_size(const struct cfl_frame *f);

/* Encodes `f` (headers and body) into dst[0..cap). Returns the bytes written; CFL_ETOOBIG if
 * they do not fit in `cap` or in an int (dst may then hold a partial frame); CFL_EINVAL, with
 * nothing written, if `f` breaks a rule the decoder checks (type, flags, ref, headers, body). A
 * header section over 65535 bytes or a payload over 2^32 - 1 is CFL_ETOOBIG. */
int cfl_frame_encode(uint8_t *dst, size_t cap, const struct cfl_frame *f);

/* For bodies sent straight from their source: encodes the fixed header and the header section
 * of a frame whose body will be `body_len` bytes, and nothing of the body (f->body and
 * f->body_len are ignored). The caller writes the body bytes right after. Returns the bytes
 * written (32 + header section), or CFL_ETOOBIG / CFL_EINVAL as cfl_frame_encode(). It cannot
 * check the contents of the body (GOAWAY must be UTF-8, WINDOW credit non-zero). */
int cfl_frame_encode_head(uint8_t *dst, size_t cap, const struct cfl_frame *f, size_t body_len);

/* "REQUEST", "REPLY", ... for logs; "UNKNOWN" for other values. Static string. */
const char *cfl_frame_type_name(int type);

#endif
