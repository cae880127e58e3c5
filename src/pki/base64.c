/* Standard base64 (RFC 4648 §4) with padding. Decoding is strict (§3.3, §3.5): no whitespace,
 * no characters outside the alphabet, padding only at the end, zero pad bits, and a length
 * that is a multiple of 4, so each byte string has exactly one accepted encoding. */
#include "cfl/pki.h"

#include <stdint.h>
#include <stdlib.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Encodes 1..3 bytes into 4 characters, '='-padded. */
static void encode_quantum(const uint8_t *in, size_t n, char *dst)
{
	uint32_t v = (uint32_t)in[0] << 16;

	if (n > 1)
		v |= (uint32_t)in[1] << 8;
	if (n > 2)
		v |= in[2];
	dst[0] = alphabet[v >> 18];
	dst[1] = alphabet[(v >> 12) & 63];
	dst[2] = '=';
	dst[3] = '=';
	if (n > 1)
		dst[2] = alphabet[(v >> 6) & 63];
	if (n > 2)
		dst[3] = alphabet[v & 63];
}

int cfl_base64_encode(const void *data, size_t len, char **out)
{
	const uint8_t *in = data;
	size_t n = 0;
	char *s;

	if ((data == NULL && len > 0) || out == NULL)
		return CFL_EINVAL;
	if (len > (SIZE_MAX - 1) / 4 * 3 - 2)
		return CFL_ETOOBIG;
	s = malloc((len + 2) / 3 * 4 + 1);
	if (s == NULL)
		return CFL_ENOMEM;
	for (size_t i = 0; i < len; i += 3, n += 4)
		encode_quantum(in + i, len - i < 3 ? len - i : 3, s + n);
	s[n] = '\0';
	*out = s;
	return 0;
}

/* The 6-bit value of an alphabet character, or -1. */
static int sextet(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes one 4-character quantum into 1..3 bytes; `last` allows "xx==" and "xxx=". Returns
 * the number of bytes or -1. */
static int quantum(const char *q, int last, uint8_t *dst)
{
	int pad = 0, v[4];
	uint32_t bits = 0;

	if (last)
		pad = q[3] != '=' ? 0 : q[2] != '=' ? 1 : 2;
	for (int k = 0; k < 4 - pad; k++) {
		v[k] = sextet(q[k]);
		if (v[k] < 0)
			return -1;
		bits |= (uint32_t)v[k] << (18 - 6 * k);
	}
	/* Non-zero bits under the padding would give a second encoding of the same bytes. */
	if ((pad == 1 && (bits & 0xff) != 0) || (pad == 2 && (bits & 0xffff) != 0))
		return -1;
	dst[0] = (uint8_t)(bits >> 16);
	if (pad < 2)
		dst[1] = (uint8_t)(bits >> 8);
	if (pad < 1)
		dst[2] = (uint8_t)bits;
	return 3 - pad;
}

int cfl_base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len)
{
	uint8_t *buf;
	size_t n = 0;

	if ((text == NULL && len > 0) || out == NULL || out_len == NULL)
		return CFL_EINVAL;
	if (len % 4 != 0)
		return CFL_EPARSE;
	/* +1 so that an empty input still yields a buffer the caller can free(). */
	buf = malloc(len / 4 * 3 + 1);
	if (buf == NULL)
		return CFL_ENOMEM;
	for (size_t i = 0; i < len; i += 4) {
		int got = quantum(text + i, i + 4 == len, buf + n);

		if (got < 0) {
			free(buf);
			return CFL_EPARSE;
		}
		n += (size_t)got;
	}
	*out = buf;
	*out_len = n;
	return 0;
}
