/* exclude_vars expressions, checked before regcomp sees them.
 *
 * Two reasons. FLARE's files are written for Python's re, cfl's matcher is POSIX's: most
 * tensor-name patterns read the same in both, but an escape such as \d (a digit in Python, a
 * plain 'd' for glibc) or [\w] would quietly match other names, so only the escapes both read
 * alike pass. And glibc's regcomp spells out every repetition it cannot loop: a{3,5} holds five
 * copies of a, (x+)+ four of x, and nested repetitions multiply, so a pattern of a few hundred
 * bytes can ask for gigabytes (fuzz_privacy found "c++++...", 1.2 GB). The walk below bounds the
 * copies before any are made, and refuses a repetition of a repetition, which takes glibc
 * exponential time (fuzz_privacy again: "T+" and 40 stars, 42 s). */
#include "privacy/privacy_int.h"

#include <string.h>

#define PATTERN_MAX_NODES 4096 /* what regcomp may build, counted as below */
#define PATTERN_MAX_DEPTH 32   /* nested groups */

/* One group being read: the copies counted so far, and those of its last atom (which a
 * repetition after it multiplies). */
struct level {
	double total, last;
};

static void atom(struct level *l, double n)
{
	l->total += n;
	l->last = n;
}

/* The last atom repeated: `times` copies of it, and a node for each copy that may be skipped
 * or looped (a* is 2 nodes, a+ is 3: a a*, a{2,3} 6: a a a?). */
static void repeat(struct level *l, double times)
{
	double grown = l->last * times + times;

	l->total += grown - l->last;
	l->last = grown;
}

static double number(const char **s)
{
	double v = 0;

	for (; **s >= '0' && **s <= '9'; (*s)++)
		v = v < 1e6 ? v * 10 + (**s - '0') : v;
	return v;
}

/* At '{': the copies an interval {m}, {m,} or {m,n} costs at most, with *p moved to its '}';
 * 0 when it is not an interval (regcomp then decides what it is). */
static double interval(const char **p)
{
	const char *s = *p + 1;
	double m, n;

	if (*s < '0' || *s > '9')
		return 0;
	m = n = number(&s);
	if (*s == ',') {
		s++;
		n = number(&s);
	}
	if (*s != '}')
		return 0;
	*p = s;
	return (m > n ? m : n) + 1;
}

/* At '[': the end of the bracket expression (its ']', or the last byte when it has none);
 * NULL when a backslash is in it (literal for POSIX, an escape for Python). */
static const char *bracket_end(const char *p)
{
	const char *s = p + 1;

	if (*s == '^')
		s++;
	if (*s == ']')
		s++;
	for (; *s != '\0' && *s != ']'; s++) {
		if (*s == '\\')
			return NULL;
		if (*s == '[' && (s[1] == ':' || s[1] == '.' || s[1] == '=')) {
			const char *close = strchr(s + 2, s[1]);

			while (close != NULL && close[1] != ']')
				close = strchr(close + 1, s[1]);
			if (close == NULL)
				break;
			s = close + 1;
		}
	}
	return *s == '\0' ? s - 1 : s;
}

/* Escapes that mean the same in Python's re and glibc's extended expressions: a literal
 * punctuation mark, or GNU's word and space classes and word boundaries. */
static const char *escape_trouble(char c)
{
	if (c == '\0')
		return "it ends with a backslash";
	if (c == 'd' || c == 'D')
		return "'\\d' is Python syntax: use [0-9]";
	if (c >= '1' && c <= '9')
		return "back-references are not allowed";
	if (strchr(".[](){}*+?|^$\\/-", c) == NULL && strchr("wWsSbB", c) == NULL)
		return "an escape other than \\w \\W \\s \\S \\b \\B or of a punctuation mark "
		       "(Python and POSIX read it differently)";
	return NULL;
}

const char *cfl__priv_pattern_check(const char *p)
{
	struct level lv[PATTERN_MAX_DEPTH];
	const char *trouble;
	size_t depth = 0;
	int repeated = 0; /* the last thing read was a repetition */

	lv[0] = (struct level){0, 0};
	for (; *p != '\0'; p++) {
		double times = 0;

		switch (*p) {
		case '\\':
			if ((trouble = escape_trouble(*++p)) != NULL)
				return trouble;
			atom(&lv[depth], 1);
			break;
		case '[':
			if ((p = bracket_end(p)) == NULL)
				return "a backslash in a bracket expression (Python and POSIX read "
				       "it "
				       "differently)";
			atom(&lv[depth], 1);
			break;
		case '(':
			if (++depth == PATTERN_MAX_DEPTH)
				return "groups nest too deep";
			lv[depth] = (struct level){0, 0};
			break;
		case ')':
			if (depth == 0) {
				atom(&lv[0], 1); /* unbalanced: regcomp says so */
				break;
			}
			depth--;
			atom(&lv[depth], lv[depth + 1].total + 1);
			break;
		case '*':
		case '?':
			times = 1;
			break;
		case '+':
			times = 2;
			break;
		case '{':
			times = interval(&p);
			if (times == 0)
				atom(&lv[depth], 1);
			break;
		default:
			atom(&lv[depth], 1);
			break;
		}
		/* POSIX leaves a** undefined, Python refuses it and reads +? *? as lazy ones. */
		if (times > 0 && repeated)
			return "a repetition of a repetition (such as a** or a+?)";
		repeated = times > 0;
		if (times > 0)
			repeat(&lv[depth], times);
		if (lv[depth].total > PATTERN_MAX_NODES)
			return "it repeats too much (nested or large repetitions)";
	}
	/* Groups left open still cost what they hold (regcomp will refuse them anyway). */
	for (; depth > 0; depth--)
		atom(&lv[depth - 1], lv[depth].total + 1);
	return lv[0].total > PATTERN_MAX_NODES ? "it repeats too much (nested or large repetitions)"
	                                       : NULL;
}
