/* The built-in executor: the C trainer on Fashion-MNIST or the 8x8 digits, with the data
 * loaded once per process and split deterministically among the sites. */
#define _DEFAULT_SOURCE

#include "cfl/dataset.h"
#include "cfl/log.h"
#include "cfl/trainer.h"
#include "trainer_int.h"
#include "util/fs.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIGITS_TEST_FRACTION 0.25
#define DIGITS_SPLIT_SEED    7

/* One loaded dataset (train and test parts) per process. */
static struct {
	char name[32];
	struct cfl_dataset train, test;
	int loaded;
} cache;

static const char *str_or(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : dflt;
}

static double num_or(json_t *o, const char *key, double dflt)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : dflt;
}

/* A seed: a number 0..2^64 (fractions dropped). Converting one out of range is undefined. */
static int seed_of(json_t *o, const char *key, uint64_t *out)
{
	double v = num_or(o, key, 1);

	if (!(v >= 0 && v < 0x1p64))
		return -1;
	*out = (uint64_t)v;
	return 0;
}

int cfl__trainer_builtin_cfg(json_t *ex, struct cfl_trainer_cfg *c, struct cfl_err *e)
{
	const char *arch = str_or(ex, "arch", "mlp");
	double hidden = num_or(ex, "hidden", 128), lr = num_or(ex, "lr", 0.05);
	double epochs = num_or(ex, "epochs", 1), batch = num_or(ex, "batch", 32);

	memset(c, 0, sizeof(*c));
	if (strcmp(arch, "mlp") == 0)
		c->arch = CFL_ARCH_MLP;
	else if (strcmp(arch, "softmax") == 0)
		c->arch = CFL_ARCH_SOFTMAX;
	else
		return cfl_err_set(e, CFL_ECONFIG,
		                   "unknown executor.arch '%s' (allowed: mlp, softmax)", arch);
	/* The ranges are checked on the doubles (fractions are dropped, as the casts did): a
	 * double out of an int's range converts to nothing defined. */
	if (!(hidden >= 1 && hidden < 4097) || !(epochs >= 1 && epochs < 1001) ||
	    !(batch >= 1 && batch < 65537) || !(lr > 0 && lr < 100 && (float)lr > 0) ||
	    seed_of(ex, "seed", &c->seed) != 0)
		return cfl_err_set(e, CFL_ECONFIG, "executor settings out of range");
	c->hidden = (int)hidden;
	c->lr = (float)lr;
	c->epochs = (int)epochs;
	c->batch = (int)batch;
	return 0;
}

/* digits.csv.gz: executor.data_path, $CFL_DATA_DIR, or data/ beside the build folder of cfl. */
static int digits_path(json_t *ex, char *buf, size_t size)
{
	const char *p = str_or(ex, "data_path", NULL), *dir = getenv("CFL_DATA_DIR");
	char self[PATH_MAX];
	ssize_t n;

	if (p != NULL)
		return snprintf(buf, size, "%s", p) < (int)size ? 0 : -1;
	if (dir != NULL && snprintf(buf, size, "%s/digits.csv.gz", dir) < (int)size &&
	    cfl__fs_exists(buf))
		return 0;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		*strrchr(self, '/') = '\0';
		if (snprintf(buf, size, "%s/../data/digits.csv.gz", self) < (int)size &&
		    cfl__fs_exists(buf))
			return 0;
	}
	return snprintf(buf, size, "/usr/share/cfl/digits.csv.gz") < (int)size ? 0 : -1;
}

static int load(json_t *ex, struct cfl_err *e)
{
	const char *name = str_or(ex, "dataset", "fashion-mnist");
	char path[PATH_MAX];
	struct cfl_dataset all;
	int rc;

	if (cache.loaded && strcmp(cache.name, name) == 0)
		return 0;
	cfl_trainer_builtin_release();
	if (strcmp(name, "fashion-mnist") == 0) {
		const char *dir = str_or(ex, "data_path", CFL_FMNIST_DIR);

		rc = cfl_dataset_load_fashion_mnist(dir, 0, &cache.train, e);
		if (rc == 0)
			rc = cfl_dataset_load_fashion_mnist(dir, 1, &cache.test, e);
	} else if (strcmp(name, "digits") == 0) {
		memset(&all, 0, sizeof(all));
		if (digits_path(ex, path, sizeof(path)) != 0)
			return cfl_err_set(e, CFL_ETOOBIG, "data path too long");
		rc = cfl_dataset_load_digits(path, &all, e);
		if (rc == 0)
			rc = cfl_dataset_train_test_split(&all, DIGITS_TEST_FRACTION,
			                                  DIGITS_SPLIT_SEED, &cache.train,
			                                  &cache.test);
		cfl_dataset_release(&all);
	} else {
		return cfl_err_set(e, CFL_ECONFIG,
		                   "unknown executor.dataset '%s' (allowed: fashion-mnist, digits)",
		                   name);
	}
	if (rc != 0) {
		cfl_trainer_builtin_release();
		return rc;
	}
	snprintf(cache.name, sizeof(cache.name), "%s", name);
	cache.loaded = 1;
	return 0;
}

void cfl_trainer_builtin_release(void)
{
	if (!cache.loaded)
		return;
	cfl_dataset_release(&cache.train);
	cfl_dataset_release(&cache.test);
	memset(&cache, 0, sizeof(cache));
}

/* The "synthetic" dataset, for benchmarks of the runtime: one tensor of `floats` values that
 * "training" moves by the site's index + 1; no data, no accuracy. */
#define SYNTH_MAX_FLOATS ((int64_t)1 << 30)

static int synthetic(json_t *ex)
{
	return strcmp(str_or(ex, "dataset", ""), "synthetic") == 0;
}

static int synth_init(json_t *ex, struct cfl_model **out, struct cfl_err *e)
{
	double floats = num_or(ex, "floats", 1000);
	int64_t n;

	if (!(floats >= 1 && floats < (double)SYNTH_MAX_FLOATS + 1))
		return cfl_err_set(e, CFL_ECONFIG, "executor.floats must be 1..2^30");
	n = (int64_t)floats;
	if (cfl_model_new(out) != 0)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	if (cfl_model_add(*out, "w", &n, 1, NULL) != 0) {
		cfl_model_free(*out);
		*out = NULL;
		return cfl_err_set(e, CFL_ENOMEM, "out of memory for %lld floats", (long long)n);
	}
	return 0;
}

int cfl_trainer_builtin_init_model(json_t *ex, struct cfl_model **out, struct cfl_err *e)
{
	struct cfl_trainer_cfg c;
	const char *name = str_or(ex, "dataset", "fashion-mnist");
	size_t dim = strcmp(name, "digits") == 0 ? CFL_DIGITS_DIM : CFL_IDX_SIDE * CFL_IDX_SIDE;
	int rc;

	if (synthetic(ex))
		return synth_init(ex, out, e);
	rc = cfl__trainer_builtin_cfg(ex, &c, e);
	if (rc != 0)
		return rc;
	return cfl_trainer_init(&c, dim, 10, out, e);
}

int cfl_trainer_builtin_eval(json_t *ex, const struct cfl_model *m, float *acc, float *loss,
                             struct cfl_err *e)
{
	int rc = load(ex, e);

	if (rc != 0)
		return rc;
	return cfl_trainer_eval(m, &cache.test, acc, loss, e);
}

int cfl_trainer_builtin_train(json_t *ex, int site, int n_sites, int round, struct cfl_model *m,
                              uint64_t *steps, float *loss, struct cfl_err *e)
{
	struct cfl_trainer_cfg c;
	struct cfl_dataset part;
	uint64_t split_seed;
	int rc;

	memset(&part, 0, sizeof(part));
	if (synthetic(ex)) {
		for (size_t i = 0; i < m->n; i++)
			for (size_t k = 0; k < m->t[i].count; k++)
				m->t[i].data[k] += (float)(site + 1);
		*steps = 1;
		*loss = 0;
		return 0;
	}
	if ((rc = cfl__trainer_builtin_cfg(ex, &c, e)) != 0 || (rc = load(ex, e)) != 0)
		return rc;
	if (site < 0 || site >= n_sites)
		return cfl_err_set(e, CFL_EINVAL, "site index %d of %d", site, n_sites);
	if (seed_of(ex, "split_seed", &split_seed) != 0)
		return cfl_err_set(e, CFL_ECONFIG, "executor.split_seed out of range");
	rc = cfl_dataset_split(&cache.train, n_sites, site, num_or(ex, "alpha", 0), split_seed,
	                       &part);
	if (rc != 0)
		return cfl_err_set(e, rc, "cannot split the data");
	/* Each site, and each round, visits its data in another order. */
	c.seed ^= (uint64_t)site * 0x9e3779b97f4a7c15ull ^ (uint64_t)round * 0xc2b2ae3d27d4eb4full;
	rc = cfl_trainer_train(&c, m, &part, steps, loss, e);
	cfl_dataset_release(&part);
	return rc;
}

int cfl_trainer_builtin_shares(json_t *ex, int n_sites, uint64_t *shares, struct cfl_err *e)
{
	struct cfl_trainer_cfg c;
	uint64_t split_seed;
	size_t *sizes;
	int rc;

	if (n_sites < 1 || n_sites > CFL_DATASET_MAX_SITES)
		return cfl_err_set(e, CFL_EINVAL, "%d sites", n_sites);
	if (synthetic(ex)) {
		for (int i = 0; i < n_sites; i++)
			shares[i] = 1; /* what cfl_trainer_builtin_train reports for it */
		return 0;
	}
	if ((rc = cfl__trainer_builtin_cfg(ex, &c, e)) != 0 || (rc = load(ex, e)) != 0)
		return rc;
	if (seed_of(ex, "split_seed", &split_seed) != 0)
		return cfl_err_set(e, CFL_ECONFIG, "executor.split_seed out of range");
	sizes = calloc((size_t)n_sites, sizeof(*sizes));
	if (sizes == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	rc = cfl_dataset_split_sizes(&cache.train, n_sites, num_or(ex, "alpha", 0), split_seed,
	                             sizes);
	/* cfl_trainer_train counts epochs * samples. */
	for (int i = 0; rc == 0 && i < n_sites; i++)
		shares[i] = (uint64_t)sizes[i] * (uint64_t)c.epochs;
	free(sizes);
	return rc != 0 ? cfl_err_set(e, rc, "cannot split the data") : 0;
}

int cfl_trainer_builtin_central(json_t *ex, int epochs, float *acc, struct cfl_err *e)
{
	struct cfl_trainer_cfg c;
	struct cfl_model *m = NULL;
	uint64_t steps = 0;
	float loss = 0, tl = 0;
	int rc;

	if ((rc = cfl__trainer_builtin_cfg(ex, &c, e)) != 0 || (rc = load(ex, e)) != 0)
		return rc;
	c.epochs = epochs;
	rc = cfl_trainer_builtin_init_model(ex, &m, e);
	if (rc == 0)
		rc = cfl_trainer_train(&c, m, &cache.train, &steps, &loss, e);
	if (rc == 0)
		rc = cfl_trainer_eval(m, &cache.test, acc, &tl, e);
	cfl_model_free(m);
	return rc;
}

int cfl_trainer_central_baseline(const char *job_dir, int epochs, float *accuracy,
                                 struct cfl_err *e)
{
	char path[PATH_MAX];
	json_error_t je;
	json_t *cfg;
	int rc;

	if (cfl__path_join(path, sizeof(path), job_dir, "config.json") != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "path too long");
	cfg = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (cfg == NULL)
		return cfl_err_set(e, CFL_ECONFIG, "'%s': line %d: %s", path, je.line, je.text);
	rc = cfl_trainer_builtin_central(json_object_get(cfg, "executor"), epochs, accuracy, e);
	json_decref(cfg);
	cfl_trainer_builtin_release();
	return rc;
}
