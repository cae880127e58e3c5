/* Syntax checks for the names in a project file: host names, IP literals, e-mail addresses,
 * participant and organisation names. */
#include "provision/project_int.h"

#include <arpa/inet.h>
#include <string.h>

static int is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int cfl__is_word(const char *s, const char *extra)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!is_alnum((unsigned char)*s) && strchr(extra, *s) == NULL)
			return 0;
	return 1;
}

/* One label of an RFC 1123 host name: 1..63 of [A-Za-z0-9-], no '-' at either end. */
static int label_ok(const char *s, size_t len)
{
	if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
			return 0;
	return 1;
}

static int all_digits(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

int cfl__is_hostname(const char *s)
{
	size_t total = strlen(s), len = 0;
	const char *label = s;

	if (total == 0 || total > 255)
		return 0;
	for (const char *p = s;; p++) {
		if (*p != '.' && *p != '\0')
			continue;
		len = (size_t)(p - label);
		if (!label_ok(label, len))
			return 0;
		if (*p == '\0')
			break;
		label = p + 1;
	}
	/* RFC 1123 §2.1 allows digits first, but a name whose last label is all digits reads
	 * as a broken IPv4 address ("999.1.1.1"); RFC 3696 §2 rules such top-level labels out. */
	return !all_digits(label, len);
}

int cfl__is_ip(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int cfl__is_host(const char *s)
{
	return cfl__is_ip(s) || cfl__is_hostname(s);
}

/* The local part is a subset of RFC 5322's dot-atom: an admin's name becomes the folder of its
 * kit, so '/' and a leading '.' ("../../x@y.com", ".hidden@y.com") must never get through. */
int cfl__is_email(const char *s)
{
	const char *at = strchr(s, '@');

	if (at == NULL || at == s || s[0] == '.' || strchr(at + 1, '@') != NULL)
		return 0;
	for (const char *p = s; p < at; p++)
		if (!is_alnum((unsigned char)*p) && strchr("._+-", *p) == NULL)
			return 0;
	return strchr(at + 1, '.') != NULL && cfl__is_hostname(at + 1);
}

void cfl__quote(char *buf, size_t size, const char *s)
{
	size_t max, len = strlen(s), i;
	int cut = 0;

	if (size == 0)
		return;
	max = size - 1 < 80 ? size - 1 : 80;
	if (len > max) {
		cut = max >= 3;
		len = cut ? max - 3 : max;
		/* Do not split a UTF-8 sequence: back up over continuation bytes. */
		while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[i] = s[i];
		if (c < 0x20 || c == 0x7f)
			buf[i] = '?';
	}
	if (cut) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
}
