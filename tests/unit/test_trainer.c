/* Unit tests for the built-in trainer (src/fl/trainer.c): initialisation, a finite-difference
 * check of the back-propagation, learning on digits, determinism, and rejection of bad models,
 * configurations and data. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "src_tree.h"

#include "cfl/dataset.h"
#include "cfl/err.h"
#include "cfl/model.h"
#include "cfl/trainer.h"
#include "util/fs.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* digits, split 75 % / 25 % with seed 1 */
static struct cfl_dataset train_set, test_set;

static int setup(void **state)
{
	char path[PATH_MAX];
	struct cfl_dataset all;
	struct cfl_err e = {0};

	(void)state;
	if (cfl__path_join(path, sizeof(path), src_dir(), "data/digits.csv.gz") != 0 ||
	    cfl_dataset_load_digits(path, &all, &e) != 0) {
		fprintf(stderr, "test_trainer: %s\n", e.msg);
		return -1;
	}
	if (cfl_dataset_train_test_split(&all, 0.25, 1, &train_set, &test_set) != 0)
		return -1;
	cfl_dataset_release(&all);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cfl_dataset_release(&train_set);
	cfl_dataset_release(&test_set);
	return 0;
}

static struct cfl_trainer_cfg cfg_of(int arch, int hidden, float lr, int epochs, int batch,
                                     uint64_t seed)
{
	struct cfl_trainer_cfg c;

	cfl_trainer_cfg_default(&c);
	c.arch = arch;
	c.hidden = hidden;
	c.lr = lr;
	c.epochs = epochs;
	c.batch = batch;
	c.seed = seed;
	return c;
}

static int models_equal(const struct cfl_model *a, const struct cfl_model *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (a->t[i].count != b->t[i].count || strcmp(a->t[i].name, b->t[i].name) != 0 ||
		    memcmp(a->t[i].data, b->t[i].data, a->t[i].count * sizeof(float)) != 0)
			return 0;
	return 1;
}

static void test_init(void **state)
{
	struct cfl_trainer_cfg c = cfg_of(CFL_ARCH_MLP, 16, 0.1f, 1, 8, 5);
	struct cfl_model *m, *m2, *s;
	struct cfl_tensor *t;
	struct cfl_err e = {0};

	(void)state;
	assert_int_equal(cfl_trainer_init(&c, 64, 10, &m, &e), 0);
	assert_int_equal(m->n, 4);
	assert_string_equal(m->t[0].name, "fc1.weight");
	assert_int_equal(m->t[0].ndim, 2);
	assert_int_equal(m->t[0].shape[0], 16);
	assert_int_equal(m->t[0].shape[1], 64);
	assert_string_equal(m->t[1].name, "fc1.bias");
	assert_int_equal(m->t[1].shape[0], 16);
	assert_string_equal(m->t[2].name, "fc2.weight");
	assert_int_equal(m->t[2].shape[0], 10);
	assert_int_equal(m->t[2].shape[1], 16);
	assert_string_equal(m->t[3].name, "fc2.bias");
	t = cfl_model_find(m, "fc1.weight");
	for (size_t i = 0; i < t->count; i++)
		assert_true(fabsf(t->data[i]) <= 0.125f); /* 1/sqrt(64) */
	assert_true(t->data[0] != t->data[1]);
	t = cfl_model_find(m, "fc2.bias");
	for (size_t i = 0; i < t->count; i++)
		assert_true(fabsf(t->data[i]) <= 0.25f); /* 1/sqrt(16) */

	assert_int_equal(cfl_trainer_init(&c, 64, 10, &m2, &e), 0);
	assert_true(models_equal(m, m2)); /* same seed */
	cfl_model_free(m2);
	c.seed = 6;
	assert_int_equal(cfl_trainer_init(&c, 64, 10, &m2, &e), 0);
	assert_false(models_equal(m, m2));
	cfl_model_free(m2);
	cfl_model_free(m);

	c.arch = CFL_ARCH_SOFTMAX;
	assert_int_equal(cfl_trainer_init(&c, 784, 10, &s, &e), 0);
	assert_int_equal(s->n, 2);
	assert_string_equal(s->t[0].name, "linear.weight");
	assert_int_equal(s->t[0].shape[0], 10);
	assert_int_equal(s->t[0].shape[1], 784);
	assert_string_equal(s->t[1].name, "linear.bias");
	assert_int_equal(s->t[1].count, 10);
	cfl_model_free(s);
}

static void test_bad_config(void **state)
{
	struct cfl_trainer_cfg c = cfg_of(CFL_ARCH_MLP, 16, 0.1f, 1, 8, 5);
	struct cfl_model *m = NULL;
	struct cfl_err e = {0};

	(void)state;
	c.hidden = 0;
	assert_int_equal(cfl_trainer_init(&c, 64, 10, &m, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "hidden units 0 not in 1..4096");
	assert_null(m);
	c = cfg_of(7, 16, 0.1f, 1, 8, 5);
	assert_int_equal(cfl_trainer_init(&c, 64, 10, &m, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "unknown architecture 7");
	c = cfg_of(CFL_ARCH_MLP, 16, NAN, 1, 8, 5);
	assert_int_equal(cfl_trainer_init(&c, 64, 10, &m, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "learning rate must be a positive number");
	c = cfg_of(CFL_ARCH_MLP, 16, 0.1f, 0, 8, 5);
	assert_int_equal(cfl_trainer_init(&c, 64, 10, &m, &e), CFL_EINVAL);
	c = cfg_of(CFL_ARCH_MLP, 16, 0.1f, 1, 0, 5);
	assert_int_equal(cfl_trainer_init(&c, 64, 10, &m, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "batch 0 not in 1..65536");
	c = cfg_of(CFL_ARCH_MLP, 16, 0.1f, 1, 8, 5);
	assert_int_equal(cfl_trainer_init(&c, 64, 1, &m, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "class count 1 not in 2..256");
	assert_int_equal(cfl_trainer_init(&c, 0, 10, &m, &e), CFL_EINVAL);
}

/* A tiny random problem: n samples of dim inputs in [-1, 1], labels < classes. */
static void tiny(struct cfl_dataset *d, size_t n, size_t dim, size_t classes, unsigned seed)
{
	d->n = n;
	d->dim = dim;
	d->classes = classes;
	d->x = malloc(n * dim * sizeof(float));
	d->y = malloc(n);
	assert_non_null(d->x);
	assert_non_null(d->y);
	srand(seed);
	for (size_t i = 0; i < n * dim; i++)
		d->x[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
	for (size_t i = 0; i < n; i++)
		d->y[i] = (uint8_t)(rand() % (int)classes);
}

static float eval_loss(const struct cfl_model *m, const struct cfl_dataset *d)
{
	struct cfl_err e = {0};
	float loss;

	assert_int_equal(cfl_trainer_eval(m, d, NULL, &loss, &e), 0);
	return loss;
}

/* Compares the gradient the trainer applies with central finite differences of the loss.
 * One full-batch step with lr 1 moves every parameter by exactly minus its gradient. */
static void grad_check(int arch)
{
	struct cfl_trainer_cfg c = cfg_of(arch, 6, 1.0f, 1, 8, 11);
	const float eps = 1e-3f;
	struct cfl_model *m0, *m1;
	struct cfl_dataset d;
	struct cfl_err e = {0};
	double worst = 0.0;
	size_t checked = 0;
	uint64_t steps;

	tiny(&d, 8, 5, 3, 3);
	assert_int_equal(cfl_trainer_init(&c, d.dim, d.classes, &m0, &e), 0);
	assert_int_equal(cfl_model_clone(m0, &m1), 0);
	assert_int_equal(cfl_trainer_train(&c, m1, &d, &steps, NULL, &e), 0);
	assert_int_equal(steps, 8);
	for (size_t k = 0; k < m0->n; k++) {
		struct cfl_tensor *t = &m0->t[k];

		for (size_t i = 0; i < t->count; i++) {
			float w = t->data[i], lp, lm;
			double fd, bp, err;

			t->data[i] = w + eps;
			lp = eval_loss(m0, &d);
			t->data[i] = w - eps;
			lm = eval_loss(m0, &d);
			t->data[i] = w;
			fd = ((double)lp - (double)lm) / (2.0 * eps);
			bp = (double)w - (double)m1->t[k].data[i];
			err = fabs(fd - bp) / (1e-2 + fabs(fd) + fabs(bp));
			if (err > worst)
				worst = err;
			if (err > 2e-2)
				print_message("%s[%zu]: finite differences %.6f, backprop %.6f\n",
				              t->name, i, fd, bp);
			checked++;
		}
	}
	print_message("%s: %zu parameters, worst relative error %.2e\n",
	              arch == CFL_ARCH_MLP ? "mlp" : "softmax", checked, worst);
	assert_true(worst < 2e-2);
	cfl_model_free(m0);
	cfl_model_free(m1);
	cfl_dataset_release(&d);
}

static void test_gradient_mlp(void **state)
{
	(void)state;
	grad_check(CFL_ARCH_MLP);
}

static void test_gradient_softmax(void **state)
{
	(void)state;
	grad_check(CFL_ARCH_SOFTMAX);
}

/* Trains a fresh model on digits and returns its test accuracy. */
static float learn_digits(const struct cfl_trainer_cfg *c, float *first_loss, float *last_loss)
{
	struct cfl_model *m;
	struct cfl_err e = {0};
	struct cfl_trainer_cfg one = *c;
	float acc, loss, l0 = 0.0f;
	uint64_t steps;

	one.epochs = 1;
	assert_int_equal(cfl_trainer_init(c, train_set.dim, train_set.classes, &m, &e), 0);
	for (int ep = 0; ep < c->epochs; ep++) {
		one.seed = c->seed + (uint64_t)ep; /* a new order each epoch, as FedAvg rounds do */
		assert_int_equal(cfl_trainer_train(&one, m, &train_set, &steps, &loss, &e), 0);
		assert_int_equal(steps, train_set.n);
		if (ep == 0)
			l0 = loss;
	}
	assert_int_equal(cfl_trainer_eval(m, &test_set, &acc, NULL, &e), 0);
	*first_loss = l0;
	*last_loss = loss;
	cfl_model_free(m);
	return acc;
}

static void test_softmax_learns_digits(void **state)
{
	struct cfl_trainer_cfg c = cfg_of(CFL_ARCH_SOFTMAX, 0, 0.3f, 8, 32, 1);
	float acc, l0, l1;

	(void)state;
	acc = learn_digits(&c, &l0, &l1);
	print_message("softmax, 8 epochs: test accuracy %.3f, loss %.3f -> %.3f\n", acc, l0, l1);
	assert_true(acc > 0.90f);
	assert_true(l1 < l0);
}

static void test_mlp_learns_digits(void **state)
{
	struct cfl_trainer_cfg c = cfg_of(CFL_ARCH_MLP, 64, 0.1f, 20, 32, 1);
	float acc, l0, l1;

	(void)state;
	acc = learn_digits(&c, &l0, &l1);
	print_message("mlp 64-64-10, 20 epochs: test accuracy %.3f, loss %.3f -> %.3f\n", acc, l0,
	              l1);
	assert_true(acc > 0.93f);
	assert_true(l1 < l0);
}

static void test_deterministic(void **state)
{
	struct cfl_trainer_cfg c = cfg_of(CFL_ARCH_MLP, 32, 0.1f, 2, 16, 9);
	struct cfl_model *a, *b, *init;
	struct cfl_err e = {0};
	uint64_t sa, sb;
	float la, lb;

	(void)state;
	assert_int_equal(cfl_trainer_init(&c, 64, 10, &init, &e), 0);
	assert_int_equal(cfl_model_clone(init, &a), 0);
	assert_int_equal(cfl_model_clone(init, &b), 0);
	assert_int_equal(cfl_trainer_train(&c, a, &train_set, &sa, &la, &e), 0);
	assert_int_equal(cfl_trainer_train(&c, b, &train_set, &sb, &lb, &e), 0);
	assert_int_equal(sa, 2 * train_set.n);
	assert_int_equal(sa, sb);
	assert_true(la == lb);
	assert_true(models_equal(a, b));
	assert_false(models_equal(a, init));
	cfl_model_free(b);
	c.seed = 10; /* another shuffle order, another result */
	assert_int_equal(cfl_model_clone(init, &b), 0);
	assert_int_equal(cfl_trainer_train(&c, b, &train_set, &sb, &lb, &e), 0);
	assert_false(models_equal(a, b));
	cfl_model_free(a);
	cfl_model_free(b);
	cfl_model_free(init);
}

static void test_bad_model_and_data(void **state)
{
	struct cfl_trainer_cfg c = cfg_of(CFL_ARCH_MLP, 8, 0.1f, 1, 16, 1);
	struct cfl_model *m, *s, *copy;
	struct cfl_dataset empty = {0, 64, 10, NULL, NULL}, bad;
	struct cfl_err e = {0};
	uint64_t steps = 99;
	float loss = 9.0f, acc;

	(void)state;
	assert_int_equal(cfl_trainer_init(&c, 784, 10, &m, &e), 0);
	assert_int_equal(cfl_trainer_train(&c, m, &train_set, &steps, &loss, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "tensor 'fc1.weight' does not have shape [1..4096, 64]");
	assert_int_equal(steps, 0);
	assert_int_equal(cfl_trainer_eval(m, &test_set, &acc, NULL, &e), CFL_EINVAL);
	cfl_model_free(m);

	assert_int_equal(cfl_trainer_init(&c, 64, 10, &m, &e), 0);
	assert_int_equal(cfl_model_clone(m, &copy), 0);
	c.arch = CFL_ARCH_SOFTMAX; /* the configuration says softmax, the model is an MLP */
	assert_int_equal(cfl_trainer_train(&c, m, &train_set, &steps, &loss, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "model has no tensor 'linear.weight'");
	c.arch = CFL_ARCH_MLP;
	cfl_model_find(m, "fc2.bias")->data[3] = INFINITY;
	assert_int_equal(cfl_trainer_train(&c, m, &train_set, &steps, &loss, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "tensor 'fc2.weight' or 'fc2.bias' has a non-finite value");
	cfl_model_find(m, "fc2.bias")->data[3] = cfl_model_find(copy, "fc2.bias")->data[3];
	assert_true(models_equal(m, copy)); /* failed calls left it alone */

	/* Empty data: nothing to do, nothing changed. */
	assert_int_equal(cfl_trainer_train(&c, m, &empty, &steps, &loss, &e), 0);
	assert_int_equal(steps, 0);
	assert_true(loss == 0.0f);
	assert_true(models_equal(m, copy));
	assert_int_equal(cfl_trainer_eval(m, &empty, &acc, NULL, &e), CFL_EINVAL);

	/* A label beyond the classes. */
	bad = test_set;
	bad.classes = 5;
	assert_int_equal(cfl_trainer_train(&c, m, &bad, &steps, &loss, &e), CFL_EINVAL);
	assert_non_null(strstr(e.msg, "of 5 classes"));

	/* A model with a wrongly shaped bias. */
	assert_int_equal(cfl_model_new(&s), 0);
	assert_int_equal(cfl_model_add(s, "linear.weight", (const int64_t[]){10, 64}, 2, NULL), 0);
	assert_int_equal(cfl_model_add(s, "linear.bias", (const int64_t[]){9}, 1, NULL), 0);
	c.arch = CFL_ARCH_SOFTMAX;
	assert_int_equal(cfl_trainer_train(&c, s, &train_set, &steps, &loss, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "tensor 'linear.bias' does not have shape [10]");
	cfl_model_free(s);
	cfl_model_free(m);
	cfl_model_free(copy);
}

/* Softmax regression on half of Fashion-MNIST's test file, 3 epochs, scored on the other half:
 * a smoke test of the real data path that stays fast in a sanitizer build (test_dataset loads
 * the training file; bench_trainer has the full figures). */
static void test_fashion_mnist_softmax(void **state)
{
	struct cfl_trainer_cfg c = cfg_of(CFL_ARCH_SOFTMAX, 0, 0.1f, 3, 32, 1);
	struct cfl_dataset all, tr, te;
	struct cfl_model *m;
	struct cfl_err e = {0};
	float acc;

	(void)state;
	if (!cfl__fs_exists(CFL_FMNIST_DIR "/t10k-images-idx3-ubyte.gz")) {
		print_message("skipped: %s is missing (Debian package dataset-fashion-mnist)\n",
		              CFL_FMNIST_DIR);
		skip();
	}
	if (cfl_dataset_load_fashion_mnist(NULL, 1, &all, &e) != 0)
		fail_msg("%s", e.msg);
	assert_int_equal(cfl_dataset_train_test_split(&all, 0.5, 1, &tr, &te), 0);
	cfl_dataset_release(&all);
	assert_int_equal(cfl_trainer_init(&c, tr.dim, tr.classes, &m, &e), 0);
	assert_int_equal(cfl_trainer_train(&c, m, &tr, NULL, NULL, &e), 0);
	assert_int_equal(cfl_trainer_eval(m, &te, &acc, NULL, &e), 0);
	print_message("fashion-mnist softmax, 5,000 samples, 3 epochs: test accuracy %.3f\n", acc);
	assert_true(acc > 0.72f);
	cfl_model_free(m);
	cfl_dataset_release(&tr);
	cfl_dataset_release(&te);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_init),
	        cmocka_unit_test(test_bad_config),
	        cmocka_unit_test(test_gradient_mlp),
	        cmocka_unit_test(test_gradient_softmax),
	        cmocka_unit_test(test_softmax_learns_digits),
	        cmocka_unit_test(test_mlp_learns_digits),
	        cmocka_unit_test(test_deterministic),
	        cmocka_unit_test(test_bad_model_and_data),
	        cmocka_unit_test(test_fashion_mnist_softmax),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
