/* Data sets of the built-in trainer: the IDX (Fashion-MNIST) and digits CSV loaders, and the
 * deterministic IID / Dirichlet label-skew splits among sites (docs/trainer.md). */
#include "cfl/dataset.h"

#include "trainer/rng.h"
#include "util/fs.h"
#include "util/reader.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_MAGIC_IMAGES 0x00000803u /* unsigned byte, 3 dimensions */
#define IDX_MAGIC_LABELS 0x00000801u /* unsigned byte, 1 dimension */
#define IDX_DIM          ((size_t)CFL_IDX_SIDE * CFL_IDX_SIDE)
#define DIGITS_FIELDS    (CFL_DIGITS_DIM + 1)
#define DIGITS_MAX_PIXEL 16
#define SPLIT_TRIES      100 /* Dirichlet redraws when a site would be left empty */
#define GAMMA_MAX_LOOPS  1000

void cfl_dataset_release(struct cfl_dataset *d)
{
	if (d == NULL)
		return;
	free(d->x);
	free(d->y);
	memset(d, 0, sizeof(*d));
}

/* Allocates the arrays of an n x dim set (none for n == 0). */
static int dataset_alloc(struct cfl_dataset *d, size_t n, size_t dim, size_t classes)
{
	memset(d, 0, sizeof(*d));
	d->dim = dim;
	d->classes = classes;
	if (n == 0)
		return 0;
	if (dim == 0 || n > SIZE_MAX / sizeof(float) / dim)
		return CFL_ENOMEM;
	d->x = malloc(n * dim * sizeof(float));
	d->y = malloc(n);
	if (d->x == NULL || d->y == NULL) {
		cfl_dataset_release(d);
		return CFL_ENOMEM;
	}
	d->n = n;
	return 0;
}

/* Reads all of `path` through zlib (which passes plain files through unchanged) into a new
 * buffer (*out, free()) of at most `max` bytes. */
static int read_gz(const char *path, size_t max, uint8_t **out, size_t *len, struct cfl_err *e)
{
	uint8_t *buf = NULL, *nb;
	size_t cap = 0, n = 0;
	const char *zmsg;
	int rc = 0, zerr, got;
	gzFile f;

	*out = NULL;
	*len = 0;
	errno = 0;
	f = gzopen(path, "rb");
	if (f == NULL)
		return cfl_err_set(e, errno == ENOENT ? CFL_ENOENT : CFL_EIO,
		                   "cannot open '%s': %s", path,
		                   errno != 0 ? strerror(errno) : "out of memory");
	gzbuffer(f, 1u << 17);
	for (;;) {
		if (n == cap) {
			size_t ncap = cap == 0 ? (size_t)1 << 20 : cap * 2;

			if (cap == max + 1) {
				rc = cfl_err_set(e, CFL_ETOOBIG, "'%s': more than %zu bytes", path,
				                 max);
				goto out;
			}
			if (ncap > max + 1)
				ncap = max + 1;
			nb = realloc(buf, ncap);
			if (nb == NULL) {
				rc = cfl_err_set(e, CFL_ENOMEM, "'%s': out of memory", path);
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		got = gzread(f, buf + n, (unsigned)((cap - n) < (1u << 30) ? cap - n : 1u << 30));
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	zmsg = gzerror(f, &zerr);
	if (zerr != Z_OK) {
		rc = cfl_err_set(e, CFL_EIO, "cannot read '%s': %s", path,
		                 zerr == Z_ERRNO ? strerror(errno) : zmsg);
		goto out;
	}
out:
	zerr = gzclose(f);
	if (rc == 0 && zerr != Z_OK)
		rc = cfl_err_set(e, CFL_EIO, "cannot read '%s': truncated or corrupt gzip data",
		                 path);
	if (rc != 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* Reads an IDX header: the magic, then `ndims` big-endian u32 sizes. */
static int idx_header(struct cfl_reader *r, const char *what, uint32_t magic, uint32_t *dims,
                      int ndims, struct cfl_err *e)
{
	uint32_t m = cfl__rd_get_u32(r);

	for (int i = 0; i < ndims; i++)
		dims[i] = cfl__rd_get_u32(r);
	if (r->err != 0)
		return cfl_err_set(e, CFL_EPARSE, "%s: truncated header", what);
	if (m != magic)
		return cfl_err_set(e, CFL_EPARSE, "%s: bad magic 0x%08x (expected 0x%08x)", what,
		                   (unsigned)m, (unsigned)magic);
	if (dims[0] == 0)
		return cfl_err_set(e, CFL_EPARSE, "%s: no items", what);
	if (dims[0] > CFL_IDX_MAX_IMAGES)
		return cfl_err_set(e, CFL_ETOOBIG, "%s: %u items (at most %d)", what,
		                   (unsigned)dims[0], CFL_IDX_MAX_IMAGES);
	return 0;
}

int cfl_dataset_parse_idx(const void *images, size_t images_len, const void *labels,
                          size_t labels_len, struct cfl_dataset *out, struct cfl_err *e)
{
	struct cfl_reader ri, rl;
	const uint8_t *px, *lb;
	uint32_t di[3], dl[1];
	size_t n;
	int rc;

	memset(out, 0, sizeof(*out));
	cfl__rd_init(&ri, images, images_len);
	cfl__rd_init(&rl, labels, labels_len);
	if ((rc = idx_header(&ri, "images", IDX_MAGIC_IMAGES, di, 3, e)) != 0 ||
	    (rc = idx_header(&rl, "labels", IDX_MAGIC_LABELS, dl, 1, e)) != 0)
		return rc;
	if (di[1] != CFL_IDX_SIDE || di[2] != CFL_IDX_SIDE)
		return cfl_err_set(e, CFL_EPARSE, "images: size %ux%u (expected %dx%d)",
		                   (unsigned)di[1], (unsigned)di[2], CFL_IDX_SIDE, CFL_IDX_SIDE);
	if (dl[0] != di[0])
		return cfl_err_set(e, CFL_EPARSE, "%u labels for %u images", (unsigned)dl[0],
		                   (unsigned)di[0]);
	n = di[0];
	px = cfl__rd_get_bytes(&ri, n * IDX_DIM);
	lb = cfl__rd_get_bytes(&rl, n);
	if (px == NULL || lb == NULL)
		return cfl_err_set(e, CFL_EPARSE, "%s: truncated data",
		                   px == NULL ? "images" : "labels");
	if (cfl__rd_left(&ri) != 0 || cfl__rd_left(&rl) != 0)
		return cfl_err_set(e, CFL_EPARSE, "%s: trailing bytes",
		                   cfl__rd_left(&ri) != 0 ? "images" : "labels");
	for (size_t i = 0; i < n; i++)
		if (lb[i] >= CFL_IDX_CLASSES)
			return cfl_err_set(e, CFL_EPARSE,
			                   "labels: label %u of item %zu (at most %d)", lb[i], i,
			                   CFL_IDX_CLASSES - 1);
	if (dataset_alloc(out, n, IDX_DIM, CFL_IDX_CLASSES) != 0)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	for (size_t i = 0; i < n * IDX_DIM; i++)
		out->x[i] = (float)px[i] * (1.0f / 255.0f);
	memcpy(out->y, lb, n);
	return 0;
}

int cfl_dataset_load_idx(const char *images_path, const char *labels_path, struct cfl_dataset *out,
                         struct cfl_err *e)
{
	uint8_t *img = NULL, *lab = NULL;
	size_t img_len, lab_len;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = read_gz(images_path, CFL_DATASET_MAX_FILE, &img, &img_len, e)) != 0 ||
	    (rc = read_gz(labels_path, CFL_DATASET_MAX_FILE, &lab, &lab_len, e)) != 0)
		goto out;
	rc = cfl_dataset_parse_idx(img, img_len, lab, lab_len, out, e);
	if (rc != 0)
		cfl_err_prefix(e, "cannot load '%s' and '%s'", images_path, labels_path);
out:
	free(img);
	free(lab);
	return rc;
}

int cfl_dataset_load_fashion_mnist(const char *dir, int test, struct cfl_dataset *out,
                                   struct cfl_err *e)
{
	const char *pre = test ? "t10k" : "train";
	char name[64], img[PATH_MAX], lab[PATH_MAX];

	memset(out, 0, sizeof(*out));
	if (dir == NULL)
		dir = CFL_FMNIST_DIR;
	snprintf(name, sizeof(name), "%s-images-idx3-ubyte.gz", pre);
	if (cfl__path_join(img, sizeof(img), dir, name) != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", dir);
	snprintf(name, sizeof(name), "%s-labels-idx1-ubyte.gz", pre);
	if (cfl__path_join(lab, sizeof(lab), dir, name) != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", dir);
	return cfl_dataset_load_idx(img, lab, out, e);
}

/* Parses one unsigned decimal field of at most 3 digits at text[*pos] (bounded by len; no
 * sign, no space) into *v. */
static int digits_field(const char *text, size_t len, size_t *pos, long *v)
{
	char num[8], *end;
	size_t k = 0;

	while (*pos + k < len && text[*pos + k] >= '0' && text[*pos + k] <= '9') {
		if (k == 3)
			return -1;
		num[k] = text[*pos + k];
		k++;
	}
	if (k == 0)
		return -1;
	num[k] = '\0';
	errno = 0;
	*v = strtol(num, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*pos += k;
	return 0;
}

/* Parses the row starting at text[*pos] into x[0..64) and *y, leaving *pos after its line. */
static int digits_row(const char *text, size_t len, size_t *pos, size_t line, float *x, uint8_t *y,
                      struct cfl_err *e)
{
	for (int f = 0; f < DIGITS_FIELDS; f++) {
		long max = f < CFL_DIGITS_DIM ? DIGITS_MAX_PIXEL : CFL_DIGITS_CLASSES - 1, v;

		if (digits_field(text, len, pos, &v) != 0)
			return cfl_err_set(e, CFL_EPARSE, "line %zu, field %d: not a number", line,
			                   f + 1);
		if (v > max)
			return cfl_err_set(e, CFL_EPARSE,
			                   "line %zu, field %d: %ld out of range 0..%ld", line,
			                   f + 1, v, max);
		if (f < CFL_DIGITS_DIM) {
			x[f] = (float)v / (float)DIGITS_MAX_PIXEL;
			if (*pos >= len || text[*pos] != ',')
				return cfl_err_set(e, CFL_EPARSE,
				                   "line %zu, field %d: expected ','", line, f + 1);
			(*pos)++;
		} else {
			*y = (uint8_t)v;
		}
	}
	if (*pos < len && text[*pos] == '\r')
		(*pos)++;
	if (*pos < len && text[*pos] != '\n')
		return cfl_err_set(e, CFL_EPARSE, "line %zu: more than %d fields", line,
		                   DIGITS_FIELDS);
	if (*pos < len)
		(*pos)++;
	return 0;
}

int cfl_dataset_parse_digits(const char *text, size_t len, struct cfl_dataset *out,
                             struct cfl_err *e)
{
	size_t rows = 0, pos = 0, n = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	/* An upper bound on the rows, for one allocation: the lines. */
	for (size_t i = 0; i < len; i++)
		rows += text[i] == '\n';
	rows += len > 0 && text[len - 1] != '\n';
	if (rows == 0)
		return cfl_err_set(e, CFL_EPARSE, "no rows");
	if (rows > CFL_DIGITS_MAX_ROWS)
		return cfl_err_set(e, CFL_ETOOBIG, "more than %d rows", CFL_DIGITS_MAX_ROWS);
	if (dataset_alloc(out, rows, CFL_DIGITS_DIM, CFL_DIGITS_CLASSES) != 0)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	while (pos < len) {
		rc = digits_row(text, len, &pos, n + 1, out->x + n * CFL_DIGITS_DIM, out->y + n, e);
		if (rc != 0) {
			cfl_dataset_release(out);
			return rc;
		}
		n++;
	}
	out->n = n;
	return 0;
}

int cfl_dataset_load_digits(const char *path, struct cfl_dataset *out, struct cfl_err *e)
{
	uint8_t *text;
	size_t len;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = read_gz(path, CFL_DATASET_MAX_FILE, &text, &len, e);
	if (rc != 0)
		return rc;
	rc = cfl_dataset_parse_digits((const char *)text, len, out, e);
	if (rc != 0)
		cfl_err_prefix(e, "cannot load '%s'", path);
	free(text);
	return rc;
}

/* Copies the samples i with owner[i] == who, in index order, into `out`. */
static int gather(const struct cfl_dataset *d, const uint16_t *owner, uint16_t who,
                  struct cfl_dataset *out)
{
	size_t k = 0, j = 0;

	for (size_t i = 0; i < d->n; i++)
		k += owner[i] == who;
	if (dataset_alloc(out, k, d->dim, d->classes) != 0)
		return CFL_ENOMEM;
	for (size_t i = 0; i < d->n && j < k; i++) {
		if (owner[i] != who)
			continue;
		memcpy(out->x + j * d->dim, d->x + i * d->dim, d->dim * sizeof(float));
		out->y[j++] = d->y[i];
	}
	return 0;
}

/* The logarithm of a Gamma(a, 1) variate, a > 0. Marsaglia and Tsang, "A simple method for
 * generating gamma variables", ACM TOMS 26(3), 2000; for a < 1 their boost
 * Gamma(a) = Gamma(a + 1) * U^(1/a). Logarithms because U^(1/a) underflows for small a. */
static double log_gamma_variate(struct cfl__rng *r, double a)
{
	double boost = 0.0, d, c;

	if (a < 1.0) {
		boost = log(cfl__rng_double_pos(r)) / a;
		a += 1.0;
	}
	d = a - 1.0 / 3.0;
	c = 1.0 / sqrt(9.0 * d);
	for (int i = 0; i < GAMMA_MAX_LOOPS; i++) {
		double x = cfl__rng_normal(r), v = 1.0 + c * x, u;

		if (v <= 0.0)
			continue;
		v = v * v * v;
		u = cfl__rng_double_pos(r);
		if (u < 1.0 - 0.0331 * x * x * x * x ||
		    log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
			return log(d * v) + boost;
	}
	return log(d) + boost; /* the mode; unreachable in practice (acceptance > 95 %) */
}

/* Dirichlet(alpha) proportions over k sites into p[0..k). */
static void dirichlet(struct cfl__rng *r, double alpha, double *p, int k)
{
	double max = -HUGE_VAL, sum = 0.0;

	for (int s = 0; s < k; s++) {
		p[s] = log_gamma_variate(r, alpha);
		if (p[s] > max)
			max = p[s];
	}
	for (int s = 0; s < k; s++)
		sum += (p[s] = exp(p[s] - max));
	for (int s = 0; s < k; s++)
		p[s] /= sum;
}

/* One Dirichlet draw: each class's samples (order[start[c]..start[c+1]), already grouped by
 * class) shuffled and cut among the sites in owner[]. Returns the number of empty sites. */
static int dirichlet_draw(const struct cfl_dataset *d, size_t *order, const size_t *start,
                          int n_sites, double alpha, struct cfl__rng *r, uint16_t *owner, double *p,
                          size_t *count)
{
	int empty = 0;

	memset(count, 0, (size_t)n_sites * sizeof(*count));
	for (size_t c = 0; c < d->classes; c++) {
		size_t nc = start[c + 1] - start[c], lo = 0;
		double cum = 0.0;

		cfl__rng_shuffle(r, order + start[c], nc);
		dirichlet(r, alpha, p, n_sites);
		for (int s = 0; s < n_sites; s++) {
			size_t hi = nc;

			/* Cut at the rounded cumulative share; the last site takes the rest. */
			cum += p[s];
			if (s < n_sites - 1 && cum < 1.0)
				hi = (size_t)llround(cum * (double)nc);
			if (hi > nc)
				hi = nc;
			if (hi < lo)
				hi = lo;
			for (size_t i = lo; i < hi; i++)
				owner[order[start[c] + i]] = (uint16_t)s;
			count[s] += hi - lo;
			lo = hi;
		}
	}
	for (int s = 0; s < n_sites; s++)
		empty += count[s] == 0;
	return empty;
}

/* Label skew: owner[] from the first of up to SPLIT_TRIES seeded draws that leaves no site
 * empty (or the last draw). */
static int split_dirichlet(const struct cfl_dataset *d, int n_sites, double alpha, uint64_t seed,
                           uint16_t *owner)
{
	size_t *order = malloc(d->n * sizeof(*order)), *start, *fill, *count;
	double *p = malloc((size_t)n_sites * sizeof(*p));
	int rc = CFL_ENOMEM;

	start = calloc(d->classes + 1, sizeof(*start));
	fill = malloc(d->classes * sizeof(*fill));
	count = malloc((size_t)n_sites * sizeof(*count));
	if (order == NULL || p == NULL || start == NULL || fill == NULL || count == NULL)
		goto out;
	/* Group the indices by class (a stable counting sort). */
	for (size_t i = 0; i < d->n; i++)
		start[d->y[i] + 1]++;
	for (size_t c = 0; c < d->classes; c++)
		start[c + 1] += start[c];
	memcpy(fill, start, d->classes * sizeof(*fill));
	for (size_t i = 0; i < d->n; i++)
		order[fill[d->y[i]]++] = i;
	for (int t = 0; t < SPLIT_TRIES; t++) {
		struct cfl__rng r;

		cfl__rng_seed(&r, seed, 0x5d1c0000u + (uint64_t)t);
		if (dirichlet_draw(d, order, start, n_sites, alpha, &r, owner, p, count) == 0 ||
		    d->n < (size_t)n_sites)
			break;
	}
	rc = 0;
out:
	free(order);
	free(p);
	free(start);
	free(fill);
	free(count);
	return rc;
}

/* Samples must have labels < classes <= 256 for the splits' class bookkeeping. */
static int check_dataset(const struct cfl_dataset *d)
{
	if (d == NULL || d->classes == 0 || d->classes > 256 || (d->n > 0 && d->dim == 0) ||
	    (d->n > 0 && (d->x == NULL || d->y == NULL)))
		return CFL_EINVAL;
	for (size_t i = 0; i < d->n; i++)
		if (d->y[i] >= d->classes)
			return CFL_EINVAL;
	return 0;
}

/* owner[i] = the site that sample i goes to: the whole split, the same on every site. */
static int assign_owners(const struct cfl_dataset *d, int n_sites, double alpha, uint64_t seed,
                         uint16_t *owner)
{
	struct cfl__rng r;
	size_t *perm;

	if (alpha != 0.0)
		return split_dirichlet(d, n_sites, alpha, seed, owner);
	perm = malloc(d->n * sizeof(*perm));
	if (perm == NULL)
		return CFL_ENOMEM;
	cfl__rng_seed(&r, seed, 0x11d);
	for (size_t i = 0; i < d->n; i++)
		perm[i] = i;
	cfl__rng_shuffle(&r, perm, d->n);
	for (size_t i = 0; i < d->n; i++)
		owner[perm[i]] = (uint16_t)(i % (size_t)n_sites);
	free(perm);
	return 0;
}

static int split_args_ok(const struct cfl_dataset *d, int n_sites, double alpha)
{
	return check_dataset(d) == 0 && n_sites >= 1 && n_sites <= CFL_DATASET_MAX_SITES &&
	       alpha >= 0.0 && isfinite(alpha);
}

int cfl_dataset_split(const struct cfl_dataset *d, int n_sites, int site, double alpha,
                      uint64_t seed, struct cfl_dataset *out)
{
	uint16_t *owner;
	int rc;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (out == NULL || !split_args_ok(d, n_sites, alpha) || site < 0 || site >= n_sites)
		return CFL_EINVAL;
	if (d->n == 0)
		return dataset_alloc(out, 0, d->dim, d->classes);
	owner = calloc(d->n, sizeof(*owner));
	if (owner == NULL)
		return CFL_ENOMEM;
	rc = assign_owners(d, n_sites, alpha, seed, owner);
	if (rc == 0)
		rc = gather(d, owner, (uint16_t)site, out);
	free(owner);
	return rc;
}

int cfl_dataset_split_sizes(const struct cfl_dataset *d, int n_sites, double alpha, uint64_t seed,
                            size_t *sizes)
{
	uint16_t *owner;
	int rc;

	if (sizes == NULL || !split_args_ok(d, n_sites, alpha))
		return CFL_EINVAL;
	memset(sizes, 0, (size_t)n_sites * sizeof(*sizes));
	if (d->n == 0)
		return 0;
	owner = calloc(d->n, sizeof(*owner));
	if (owner == NULL)
		return CFL_ENOMEM;
	rc = assign_owners(d, n_sites, alpha, seed, owner);
	for (size_t i = 0; rc == 0 && i < d->n; i++)
		sizes[owner[i]]++;
	free(owner);
	return rc;
}

int cfl_dataset_train_test_split(const struct cfl_dataset *d, double test_fraction, uint64_t seed,
                                 struct cfl_dataset *train, struct cfl_dataset *test)
{
	struct cfl__rng r;
	uint16_t *owner;
	size_t *perm, n_test;
	int rc = CFL_ENOMEM;

	if (train != NULL)
		memset(train, 0, sizeof(*train));
	if (test != NULL)
		memset(test, 0, sizeof(*test));
	if (train == NULL || test == NULL || check_dataset(d) != 0 || d->n < 2 ||
	    !(test_fraction > 0.0 && test_fraction < 1.0))
		return CFL_EINVAL;
	n_test = (size_t)llround(test_fraction * (double)d->n);
	if (n_test < 1)
		n_test = 1;
	if (n_test > d->n - 1)
		n_test = d->n - 1;
	owner = calloc(d->n, sizeof(*owner));
	perm = malloc(d->n * sizeof(*perm));
	if (owner == NULL || perm == NULL)
		goto out;
	cfl__rng_seed(&r, seed, 0x7e57);
	for (size_t i = 0; i < d->n; i++)
		perm[i] = i;
	cfl__rng_shuffle(&r, perm, d->n);
	for (size_t i = 0; i < d->n; i++)
		owner[perm[i]] = i < n_test;
	if ((rc = gather(d, owner, 0, train)) != 0 || (rc = gather(d, owner, 1, test)) != 0) {
		cfl_dataset_release(train);
		cfl_dataset_release(test);
	}
out:
	free(owner);
	free(perm);
	return rc;
}
