/* Labelled image data sets for the built-in trainer, and their deterministic split among sites.
 *
 * Two sources (docs/trainer.md):
 *   - Fashion-MNIST, the gzipped IDX files of Debian's `dataset-fashion-mnist` in
 *     CFL_FMNIST_DIR (60,000 training and 10,000 test images of 28x28, 10 classes);
 *   - sklearn's `digits.csv.gz` (data/digits.csv.gz: 1,797 images of 8x8, 10 classes).
 * Pixels become floats in [0, 1]. Everything read from a file is bounds-checked: sizes come
 * from the file only after they pass a hard cap, and every byte is read through the checked
 * reader (src/util/reader.h).
 *
 * A `struct cfl_dataset` is a plain value the caller embeds; the loaders fill it with arrays
 * it then owns and gives back with cfl_dataset_release(). Nothing here keeps global state, so
 * distinct data sets may be used from distinct threads. None of the functions block except on
 * reading the named file. */
#ifndef CFL_DATASET_H
#define CFL_DATASET_H

#include "cfl/err.h"

#include <stddef.h>
#include <stdint.h>

#define CFL_FMNIST_DIR        "/usr/share/datasets/fashion-mnist"
#define CFL_IDX_MAX_IMAGES    100000 /* cap on the image count an IDX file may declare */
#define CFL_IDX_SIDE          28     /* IDX images must be 28x28 */
#define CFL_IDX_CLASSES       10
#define CFL_DIGITS_DIM        64 /* 8x8 */
#define CFL_DIGITS_CLASSES    10
#define CFL_DIGITS_MAX_ROWS   100000
#define CFL_DATASET_MAX_SITES 1024
#define CFL_DATASET_MAX_FILE  ((size_t)80 << 20) /* decompressed bytes of one file */

/* n samples of `dim` features; x is row-major n*dim, y holds labels < classes.
 * An empty data set (n == 0) has x == NULL and y == NULL. */
struct cfl_dataset {
	size_t n, dim, classes;
	float *x;
	uint8_t *y;
};

/* Frees the arrays of `d` and zeroes it; NULL and an already released set are no-ops. */
void cfl_dataset_release(struct cfl_dataset *d);

/* Decodes an IDX pair held in memory: `images` (magic 0x00000803: ubyte, 3 dimensions
 * n x 28 x 28) and `labels` (magic 0x00000801: n labels < 10). Rejects a wrong magic, a count
 * of 0 or above CFL_IDX_MAX_IMAGES, other image sizes, a label count that differs from the
 * image count, truncated or trailing bytes, and labels >= 10 (CFL_EPARSE, or CFL_ETOOBIG for
 * the count), with a message in `e`. On success fills `out` (release it); on failure `out` is
 * zeroed. */
int cfl_dataset_parse_idx(const void *images, size_t images_len, const void *labels,
                          size_t labels_len, struct cfl_dataset *out, struct cfl_err *e);

/* Reads two IDX files, gzipped or not (zlib reads both), and decodes them as above. Errors
 * name the file: CFL_ENOENT if missing, CFL_EIO on a read or gzip error, CFL_ETOOBIG over
 * CFL_DATASET_MAX_FILE, CFL_EPARSE for bad content. */
int cfl_dataset_load_idx(const char *images_path, const char *labels_path, struct cfl_dataset *out,
                         struct cfl_err *e);

/* Loads Fashion-MNIST's training set (`test` == 0, train-*-ubyte.gz) or its test set
 * (`test` != 0, t10k-*-ubyte.gz) from `dir` (NULL: CFL_FMNIST_DIR). */
int cfl_dataset_load_fashion_mnist(const char *dir, int test, struct cfl_dataset *out,
                                   struct cfl_err *e);

/* Decodes sklearn's digits CSV: rows of 64 integers 0..16 then a label 0..9, comma separated,
 * one row a line ("\n" or "\r\n"), at most CFL_DIGITS_MAX_ROWS. Pixels are divided by 16.
 * `text` need not be NUL-terminated. Errors (CFL_EPARSE) give the line and field. */
int cfl_dataset_parse_digits(const char *text, size_t len, struct cfl_dataset *out,
                             struct cfl_err *e);

/* Reads `path` (gzipped or not; e.g. "data/digits.csv.gz" in the source tree) and decodes it
 * as above. */
int cfl_dataset_load_digits(const char *path, struct cfl_dataset *out, struct cfl_err *e);

/* Fills `out` with site `site`'s part (0-based, < n_sites <= CFL_DATASET_MAX_SITES) of `d`.
 * alpha == 0: IID, the samples shuffled with a PRNG seeded by `seed` and dealt round-robin
 * (part sizes differ by at most one). alpha > 0: label skew, each class's samples shuffled and
 * cut among the sites in proportions drawn from Dirichlet(alpha, ..., alpha); a small alpha
 * (0.1) gives most sites few classes, a large one (100) is close to IID. Draws that leave a
 * site empty are redrawn (a bounded number of times) when the data has at least n_sites
 * samples.
 *
 * The split depends only on (d, n_sites, alpha, seed): every site computes the same whole
 * split and keeps its part, so the parts are disjoint and together cover `d`, and runs on
 * other machines agree. Returns 0, CFL_EINVAL for bad arguments, CFL_ENOMEM; `out` is the
 * caller's to release (it may be empty). */
int cfl_dataset_split(const struct cfl_dataset *d, int n_sites, int site, double alpha,
                      uint64_t seed, struct cfl_dataset *out);

/* The sizes of every site's part of the same split, without copying any: sizes[i] (of
 * n_sites entries) receives the number of samples cfl_dataset_split would give site i. Lets a
 * server know what each site trains on. Returns 0, CFL_EINVAL or CFL_ENOMEM. */
int cfl_dataset_split_sizes(const struct cfl_dataset *d, int n_sites, double alpha, uint64_t seed,
                            size_t *sizes);

/* Splits `d` into a training and a test part, for data with no separate test set (digits):
 * the samples are shuffled with `seed` and round(test_fraction * n) of them (at least one, and
 * leaving at least one) go to `test`. 0 < test_fraction < 1 and d->n >= 2, else CFL_EINVAL. */
int cfl_dataset_train_test_split(const struct cfl_dataset *d, double test_fraction, uint64_t seed,
                                 struct cfl_dataset *train, struct cfl_dataset *test);

#endif
