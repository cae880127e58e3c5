/* Unit tests for the data sets (src/fl/dataset.c): IDX and digits parsing, their rejection of
 * bad input, loading the real files, and the deterministic IID / Dirichlet splits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "src_tree.h"

#include "cfl/dataset.h"
#include "cfl/err.h"
#include "util/fs.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define PIX ((size_t)CFL_IDX_SIDE * CFL_IDX_SIDE)

static void load_digits(struct cfl_dataset *d)
{
	char path[PATH_MAX];
	struct cfl_err e = {0};

	assert_int_equal(cfl__path_join(path, sizeof(path), src_dir(), "data/digits.csv.gz"), 0);
	if (cfl_dataset_load_digits(path, d, &e) != 0)
		fail_msg("%s", e.msg);
}

/* An IDX pair of n images (pixel j of image i = (i + j) % 256) and labels i % 10. */
static size_t make_idx(uint8_t *img, uint8_t *lab, uint32_t n, size_t *lab_len)
{
	const uint32_t ih[4] = {0x803, n, CFL_IDX_SIDE, CFL_IDX_SIDE}, lh[2] = {0x801, n};

	for (int k = 0; k < 4; k++)
		for (int b = 0; b < 4; b++)
			img[k * 4 + b] = (uint8_t)(ih[k] >> (24 - 8 * b));
	for (int k = 0; k < 2; k++)
		for (int b = 0; b < 4; b++)
			lab[k * 4 + b] = (uint8_t)(lh[k] >> (24 - 8 * b));
	for (uint32_t i = 0; i < n; i++) {
		for (size_t j = 0; j < PIX; j++)
			img[16 + i * PIX + j] = (uint8_t)((i + j) % 256);
		lab[8 + i] = (uint8_t)(i % 10);
	}
	*lab_len = 8 + n;
	return 16 + (size_t)n * PIX;
}

static uint8_t img_buf[16 + 3 * PIX + 1], lab_buf[8 + 3 + 1];

static void test_idx_parse(void **state)
{
	struct cfl_dataset d;
	struct cfl_err e = {0};
	size_t il, ll;

	(void)state;
	il = make_idx(img_buf, lab_buf, 3, &ll);
	assert_int_equal(cfl_dataset_parse_idx(img_buf, il, lab_buf, ll, &d, &e), 0);
	assert_int_equal(d.n, 3);
	assert_int_equal(d.dim, PIX);
	assert_int_equal(d.classes, 10);
	assert_int_equal(d.y[0], 0);
	assert_int_equal(d.y[2], 2);
	assert_true(d.x[0] == 0.0f);
	assert_float_equal(d.x[PIX + 254], 1.0f, 1e-7);              /* image 1, pixel 254: 255 */
	assert_float_equal(d.x[2 * PIX + 49], 51.0f / 255.0f, 1e-7); /* 0.2 */
	for (size_t i = 0; i < d.n * d.dim; i++)
		assert_true(d.x[i] >= 0.0f && d.x[i] <= 1.0f);
	cfl_dataset_release(&d);
	assert_null(d.x);
	cfl_dataset_release(&d); /* twice: a no-op */
	cfl_dataset_release(NULL);
}

/* Parses with byte `at` of the images (at >= 0) or labels (at < 0: byte -at-1) set to `v`. */
static int parse_patched(int at, uint8_t v, struct cfl_err *e)
{
	struct cfl_dataset d;
	size_t il, ll;
	int rc;

	il = make_idx(img_buf, lab_buf, 3, &ll);
	if (at >= 0)
		img_buf[at] = v;
	else
		lab_buf[-at - 1] = v;
	rc = cfl_dataset_parse_idx(img_buf, il, lab_buf, ll, &d, e);
	assert_null(d.x);
	assert_int_equal(d.n, 0);
	return rc;
}

static void test_idx_reject(void **state)
{
	struct cfl_dataset d;
	struct cfl_err e = {0};
	size_t il, ll;

	(void)state;
	assert_int_equal(parse_patched(3, 0x08, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "images: bad magic 0x00000808 (expected 0x00000803)");
	assert_int_equal(parse_patched(2, 0x09, &e), CFL_EPARSE); /* another element type */
	assert_int_equal(parse_patched(-4, 0x03, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "labels: bad magic 0x00000803 (expected 0x00000801)");
	assert_int_equal(parse_patched(11, 27, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "images: size 27x28 (expected 28x28)");
	assert_int_equal(parse_patched(15, 29, &e), CFL_EPARSE);
	assert_int_equal(parse_patched(-8, 2, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "2 labels for 3 images");
	assert_int_equal(parse_patched(7, 0, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "images: no items");
	assert_int_equal(parse_patched(5, 0x02, &e), CFL_ETOOBIG); /* 131075 images */
	assert_string_equal(e.msg, "images: 131075 items (at most 100000)");
	assert_int_equal(parse_patched(4, 0x80, &e), CFL_ETOOBIG); /* 2^31 + 3: no allocation */
	assert_int_equal(parse_patched(-10, 10, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "labels: label 10 of item 1 (at most 9)");

	/* Every truncation of either file, and one byte too many. */
	il = make_idx(img_buf, lab_buf, 3, &ll);
	for (size_t k = 0; k < il; k++) {
		assert_int_equal(cfl_dataset_parse_idx(img_buf, k, lab_buf, ll, &d, &e),
		                 CFL_EPARSE);
		assert_null(d.x);
	}
	assert_string_equal(e.msg, "images: truncated data");
	for (size_t k = 0; k < ll; k++)
		assert_int_equal(cfl_dataset_parse_idx(img_buf, il, lab_buf, k, &d, &e),
		                 CFL_EPARSE);
	assert_int_equal(cfl_dataset_parse_idx(img_buf, il, lab_buf, 4, &d, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "labels: truncated header");
	assert_int_equal(cfl_dataset_parse_idx(img_buf, il + 1, lab_buf, ll, &d, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "images: trailing bytes");
	assert_int_equal(cfl_dataset_parse_idx(NULL, 0, lab_buf, ll, &d, &e), CFL_EPARSE);
}

static void write_gz(const char *path, const void *p, size_t len, size_t keep)
{
	gzFile f = gzopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(gzwrite(f, p, (unsigned)len), (int)len);
	assert_int_equal(gzclose(f), Z_OK);
	if (keep > 0)
		assert_int_equal(truncate(path, (off_t)keep), 0);
}

static void test_idx_files(void **state)
{
	char dir[] = "/tmp/cfl-test-dataset.XXXXXX", ip[PATH_MAX], lp[PATH_MAX];
	struct cfl_dataset d;
	struct cfl_err e = {0};
	size_t il, ll;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(ip, sizeof(ip), "%s/images.gz", dir);
	snprintf(lp, sizeof(lp), "%s/labels", dir);
	il = make_idx(img_buf, lab_buf, 3, &ll);
	write_gz(ip, img_buf, il, 0);
	assert_int_equal(cfl__fs_write_file(lp, lab_buf, ll, 0600, &e), 0); /* plain, not gz */
	assert_int_equal(cfl_dataset_load_idx(ip, lp, &d, &e), 0);
	assert_int_equal(d.n, 3);
	assert_int_equal(d.y[1], 1);
	cfl_dataset_release(&d);

	write_gz(ip, img_buf, il, 40); /* a cut gzip stream */
	assert_int_equal(cfl_dataset_load_idx(ip, lp, &d, &e), CFL_EIO);
	assert_non_null(strstr(e.msg, "images.gz"));
	assert_null(d.x);
	img_buf[3] = 1;
	write_gz(ip, img_buf, il, 0);
	assert_int_equal(cfl_dataset_load_idx(ip, lp, &d, &e), CFL_EPARSE);
	assert_non_null(strstr(e.msg, "images: bad magic 0x00000801"));
	assert_non_null(strstr(e.msg, "cannot load '"));
	snprintf(ip, sizeof(ip), "%s/missing.gz", dir);
	assert_int_equal(cfl_dataset_load_idx(ip, lp, &d, &e), CFL_ENOENT);
	assert_int_equal(cfl_dataset_load_fashion_mnist(dir, 0, &d, &e), CFL_ENOENT);
	assert_non_null(strstr(e.msg, "train-images-idx3-ubyte.gz"));
	assert_int_equal(cfl__fs_rmtree(dir), 0);
}

static void test_digits_load(void **state)
{
	struct cfl_dataset d;
	size_t count[10] = {0};

	(void)state;
	load_digits(&d);
	assert_int_equal(d.n, 1797);
	assert_int_equal(d.dim, 64);
	assert_int_equal(d.classes, 10);
	/* First row: 0,0,5,13,9,1,0,0,... label 0; last label 8. */
	assert_float_equal(d.x[2], 5.0f / 16.0f, 1e-7);
	assert_float_equal(d.x[3], 13.0f / 16.0f, 1e-7);
	assert_int_equal(d.y[0], 0);
	assert_int_equal(d.y[1796], 8);
	for (size_t i = 0; i < d.n * d.dim; i++)
		assert_true(d.x[i] >= 0.0f && d.x[i] <= 1.0f);
	for (size_t i = 0; i < d.n; i++)
		count[d.y[i]]++;
	assert_int_equal(count[0], 178);
	assert_int_equal(count[8], 174);
	cfl_dataset_release(&d);
}

/* A digits row: 64 times `pix` then `label`, then `tail`. */
static void digits_row(char *buf, size_t size, const char *pix, const char *label, const char *tail)
{
	size_t off = 0;

	for (int i = 0; i < 64; i++)
		off += (size_t)snprintf(buf + off, size - off, "%s,", pix);
	snprintf(buf + off, size - off, "%s%s", label, tail);
}

static int parse_digits(const char *text, struct cfl_err *e)
{
	struct cfl_dataset d;
	int rc = cfl_dataset_parse_digits(text, strlen(text), &d, e);

	if (rc == 0) {
		rc = (int)d.n;
		assert_int_equal(d.dim, 64);
	} else {
		assert_null(d.x);
	}
	cfl_dataset_release(&d);
	return rc;
}

static void test_digits_reject(void **state)
{
	char row[512], two[1024];
	struct cfl_err e = {0};

	(void)state;
	digits_row(row, sizeof(row), "16", "9", "\r\n");
	assert_int_equal(parse_digits(row, &e), 1);
	snprintf(two, sizeof(two), "%s%s", row, row);
	assert_int_equal(parse_digits(two, &e), 2);
	digits_row(row, sizeof(row), "016", "9", ""); /* no final newline */
	assert_int_equal(parse_digits(row, &e), 1);

	digits_row(row, sizeof(row), "17", "1", "\n");
	assert_int_equal(parse_digits(row, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "line 1, field 1: 17 out of range 0..16");
	digits_row(row, sizeof(row), "3", "10", "\n");
	assert_int_equal(parse_digits(row, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "line 1, field 65: 10 out of range 0..9");
	digits_row(row, sizeof(row), "3", "1", ",4\n");
	assert_int_equal(parse_digits(row, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "line 1: more than 65 fields");
	digits_row(row, sizeof(row), "0", "1", "\n");
	snprintf(two, sizeof(two), "%s%s", row, row + 2); /* line 2 has 64 fields */
	assert_int_equal(parse_digits(two, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "line 2, field 64: expected ','");
	digits_row(row, sizeof(row), "-1", "1", "\n");
	assert_int_equal(parse_digits(row, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "line 1, field 1: not a number");
	digits_row(row, sizeof(row), " 1", "1", "\n");
	assert_int_equal(parse_digits(row, &e), CFL_EPARSE);
	digits_row(row, sizeof(row), "0001", "1", "\n");
	assert_int_equal(parse_digits(row, &e), CFL_EPARSE);
	digits_row(row, sizeof(row), "1", "1", "\n\n"); /* an empty line */
	assert_int_equal(parse_digits(row, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "line 2, field 1: not a number");
	assert_int_equal(parse_digits("", &e), CFL_EPARSE);
	assert_string_equal(e.msg, "no rows");
}

/* n samples, dim 2: x = (id, id), labels `classes`-periodic in blocks so that classes are
 * uneven. */
static void synthetic(struct cfl_dataset *d, size_t n, size_t classes)
{
	d->n = n;
	d->dim = 2;
	d->classes = classes;
	d->x = malloc(n * 2 * sizeof(float));
	d->y = malloc(n);
	assert_non_null(d->x);
	assert_non_null(d->y);
	for (size_t i = 0; i < n; i++) {
		d->x[2 * i] = d->x[2 * i + 1] = (float)i;
		d->y[i] = (uint8_t)((i * i / 7) % classes);
	}
}

static int same(const struct cfl_dataset *a, const struct cfl_dataset *b)
{
	return a->n == b->n && (a->n == 0 || (memcmp(a->x, b->x, a->n * a->dim * 4) == 0 &&
	                                      memcmp(a->y, b->y, a->n) == 0));
}

/* Splits d among `sites`, checks disjoint + covering + labels kept; returns the largest
 * share of one class in a site's part, averaged over the sites. */
static double check_split(const struct cfl_dataset *d, int sites, double alpha, uint64_t seed,
                          size_t *min_n, size_t *max_n)
{
	unsigned char *seen = calloc(d->n, 1);
	double skew = 0.0;

	assert_non_null(seen);
	*min_n = SIZE_MAX;
	*max_n = 0;
	for (int s = 0; s < sites; s++) {
		struct cfl_dataset p, q;
		size_t count[256] = {0}, top = 0;

		assert_int_equal(cfl_dataset_split(d, sites, s, alpha, seed, &p), 0);
		assert_int_equal(cfl_dataset_split(d, sites, s, alpha, seed, &q), 0);
		assert_true(same(&p, &q)); /* deterministic */
		for (size_t i = 0; i < p.n; i++) {
			size_t id = (size_t)p.x[2 * i];

			assert_true(id < d->n);
			assert_int_equal(seen[id], 0); /* disjoint */
			seen[id] = 1;
			assert_int_equal(p.y[i], d->y[id]);
			if (++count[p.y[i]] > top)
				top = count[p.y[i]];
		}
		skew += p.n > 0 ? (double)top / (double)p.n : 1.0;
		*min_n = p.n < *min_n ? p.n : *min_n;
		*max_n = p.n > *max_n ? p.n : *max_n;
		cfl_dataset_release(&p);
		cfl_dataset_release(&q);
	}
	for (size_t i = 0; i < d->n; i++)
		assert_int_equal(seen[i], 1); /* covering */
	free(seen);
	return skew / sites;
}

static void test_split_iid(void **state)
{
	struct cfl_dataset d, a, b;
	size_t lo, hi;
	double skew;

	(void)state;
	synthetic(&d, 1003, 10);
	skew = check_split(&d, 7, 0.0, 42, &lo, &hi);
	assert_true(hi - lo <= 1);
	assert_int_equal(lo, 143);
	assert_true(skew < 0.25);
	(void)check_split(&d, 1, 0.0, 42, &lo, &hi);
	assert_int_equal(lo, 1003);
	(void)check_split(&d, 1003, 0.0, 1, &lo, &hi);
	assert_true(lo == 1 && hi == 1);
	/* Another seed, another split. */
	assert_int_equal(cfl_dataset_split(&d, 4, 2, 0.0, 1, &a), 0);
	assert_int_equal(cfl_dataset_split(&d, 4, 2, 0.0, 2, &b), 0);
	assert_int_equal(a.n, b.n);
	assert_false(same(&a, &b));
	cfl_dataset_release(&a);
	cfl_dataset_release(&b);
	cfl_dataset_release(&d);
}

static void test_split_dirichlet(void **state)
{
	struct cfl_dataset d, a, b;
	double iid, s01, s1, s100;
	size_t lo, hi;

	(void)state;
	load_digits(&d);
	/* Use an index in x[0..1] of each sample, as check_split expects. */
	{
		struct cfl_dataset t;

		synthetic(&t, d.n, 10);
		memcpy(t.y, d.y, d.n);
		cfl_dataset_release(&d);
		d = t;
	}
	iid = check_split(&d, 8, 0.0, 7, &lo, &hi);
	s100 = check_split(&d, 8, 100.0, 7, &lo, &hi);
	s1 = check_split(&d, 8, 1.0, 7, &lo, &hi);
	s01 = check_split(&d, 8, 0.1, 7, &lo, &hi);
	assert_true(lo >= 1); /* no site left empty */
	print_message("dominant class share: iid %.2f, alpha 100 %.2f, 1 %.2f, 0.1 %.2f\n", iid,
	              s100, s1, s01);
	assert_true(iid < 0.2);
	assert_true(s100 < 0.25);
	assert_true(s1 > iid + 0.1);
	assert_true(s01 > 0.5);
	(void)check_split(&d, 3, 0.01, 9, &lo, &hi); /* tiny alpha: log-space Gamma */
	assert_true(lo >= 1);
	assert_int_equal(cfl_dataset_split(&d, 5, 0, 0.5, 1, &a), 0);
	assert_int_equal(cfl_dataset_split(&d, 5, 0, 0.5, 2, &b), 0);
	assert_false(same(&a, &b));
	cfl_dataset_release(&a);
	cfl_dataset_release(&b);
	cfl_dataset_release(&d);
}

static void test_split_invalid(void **state)
{
	struct cfl_dataset d, p, t;

	(void)state;
	synthetic(&d, 10, 3);
	assert_int_equal(cfl_dataset_split(&d, 0, 0, 0.0, 1, &p), CFL_EINVAL);
	assert_int_equal(cfl_dataset_split(&d, 2, 2, 0.0, 1, &p), CFL_EINVAL);
	assert_int_equal(cfl_dataset_split(&d, 2, -1, 0.0, 1, &p), CFL_EINVAL);
	assert_int_equal(cfl_dataset_split(&d, 2, 0, -1.0, 1, &p), CFL_EINVAL);
	assert_int_equal(cfl_dataset_split(&d, 2, 0, NAN, 1, &p), CFL_EINVAL);
	assert_int_equal(cfl_dataset_split(&d, CFL_DATASET_MAX_SITES + 1, 0, 0.0, 1, &p),
	                 CFL_EINVAL);
	assert_null(p.x);
	/* More sites than samples: some parts are empty, still disjoint and covering. */
	assert_int_equal(cfl_dataset_split(&d, 20, 15, 0.0, 1, &p), 0);
	assert_int_equal(p.n, 0);
	assert_null(p.x);
	assert_int_equal(cfl_dataset_train_test_split(&d, 0.0, 1, &p, &t), CFL_EINVAL);
	assert_int_equal(cfl_dataset_train_test_split(&d, 1.0, 1, &p, &t), CFL_EINVAL);
	d.y[3] = 3; /* a label >= classes */
	assert_int_equal(cfl_dataset_split(&d, 2, 0, 0.0, 1, &p), CFL_EINVAL);
	cfl_dataset_release(&d);
}

static void test_train_test_split(void **state)
{
	struct cfl_dataset d, tr, te, tr2, te2;
	unsigned char seen[500] = {0};

	(void)state;
	synthetic(&d, 500, 10);
	assert_int_equal(cfl_dataset_train_test_split(&d, 0.25, 3, &tr, &te), 0);
	assert_int_equal(tr.n, 375);
	assert_int_equal(te.n, 125);
	for (size_t i = 0; i < tr.n; i++)
		seen[(size_t)tr.x[2 * i]]++;
	for (size_t i = 0; i < te.n; i++)
		seen[(size_t)te.x[2 * i]]++;
	for (size_t i = 0; i < 500; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(cfl_dataset_train_test_split(&d, 0.25, 3, &tr2, &te2), 0);
	assert_true(same(&tr, &tr2) && same(&te, &te2));
	cfl_dataset_release(&tr2);
	cfl_dataset_release(&te2);
	assert_int_equal(cfl_dataset_train_test_split(&d, 0.25, 4, &tr2, &te2), 0);
	assert_false(same(&te, &te2));
	cfl_dataset_release(&tr2);
	cfl_dataset_release(&te2);
	assert_int_equal(cfl_dataset_train_test_split(&d, 0.0001, 4, &tr2, &te2), 0);
	assert_int_equal(te2.n, 1); /* at least one */
	cfl_dataset_release(&tr2);
	cfl_dataset_release(&te2);
	cfl_dataset_release(&tr);
	cfl_dataset_release(&te);
	cfl_dataset_release(&d);
}

static void test_fashion_mnist(void **state)
{
	struct cfl_dataset tr, te;
	struct cfl_err e = {0};
	size_t count[10] = {0};

	(void)state;
	if (!cfl__fs_exists(CFL_FMNIST_DIR "/t10k-images-idx3-ubyte.gz")) {
		print_message("skipped: %s is missing (Debian package dataset-fashion-mnist)\n",
		              CFL_FMNIST_DIR);
		skip();
	}
	if (cfl_dataset_load_fashion_mnist(NULL, 1, &te, &e) != 0)
		fail_msg("%s", e.msg);
	assert_int_equal(te.n, 10000);
	assert_int_equal(te.dim, 784);
	for (size_t i = 0; i < te.n; i++)
		count[te.y[i]]++;
	for (int c = 0; c < 10; c++)
		assert_int_equal(count[c], 1000);
	cfl_dataset_release(&te);
	if (cfl_dataset_load_fashion_mnist(NULL, 0, &tr, &e) != 0)
		fail_msg("%s", e.msg);
	assert_int_equal(tr.n, 60000);
	cfl_dataset_release(&tr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_idx_parse),        cmocka_unit_test(test_idx_reject),
	        cmocka_unit_test(test_idx_files),        cmocka_unit_test(test_digits_load),
	        cmocka_unit_test(test_digits_reject),    cmocka_unit_test(test_split_iid),
	        cmocka_unit_test(test_split_dirichlet),  cmocka_unit_test(test_split_invalid),
	        cmocka_unit_test(test_train_test_split), cmocka_unit_test(test_fashion_mnist),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
