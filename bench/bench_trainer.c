/* Trainer benchmark: the 784-128-10 MLP and softmax regression on Fashion-MNIST (60,000
 * training images), one cfl_trainer_train call per epoch. Prints the time of each epoch and
 * the test accuracy (10,000 images) after epochs 1 and 3 (docs/trainer.md has the figures).
 * Usage: bench_trainer [epochs 1..20] [mlp lr] [softmax lr] [batch] */
#include "cfl/dataset.h"
#include "cfl/err.h"
#include "cfl/model.h"
#include "cfl/trainer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this process: what an epoch costs when other work shares the cores. */
static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* argv[i] as a number in [lo, hi], or `def` when absent; exits on a bad value. */
static double arg(int argc, char **argv, int i, double def, double lo, double hi)
{
	char *end;
	double v;

	if (argc <= i)
		return def;
	errno = 0;
	v = strtod(argv[i], &end);
	if (errno != 0 || end == argv[i] || *end != '\0' || !(v >= lo && v <= hi)) {
		fprintf(stderr, "usage: bench_trainer [epochs 1..20] [mlp lr] [softmax lr] "
		                "[batch 1..4096]\n");
		exit(2);
	}
	return v;
}

static void run(const char *label, struct cfl_trainer_cfg *c, int epochs,
                const struct cfl_dataset *tr, const struct cfl_dataset *te)
{
	struct cfl_model *m;
	struct cfl_err e = {0};
	double total = 0.0, total_cpu = 0.0;
	uint64_t seed = c->seed;

	if (cfl_trainer_init(c, tr->dim, tr->classes, &m, &e) != 0) {
		fprintf(stderr, "bench_trainer: %s\n", e.msg);
		exit(1);
	}
	printf("%s (lr %g, batch %d, %zu parameters)\n", label, (double)c->lr, c->batch,
	       cfl_model_count(m));
	for (int ep = 1; ep <= epochs; ep++) {
		float loss, acc, tloss;
		uint64_t steps;
		double c0 = cpu_s(), t0 = now_s(), t1, t2, c1;

		c->seed = seed + (uint64_t)ep; /* a new order each epoch, as in FedAvg rounds */
		if (cfl_trainer_train(c, m, tr, &steps, &loss, &e) != 0) {
			fprintf(stderr, "bench_trainer: %s\n", e.msg);
			exit(1);
		}
		t1 = now_s();
		c1 = cpu_s();
		if (cfl_trainer_eval(m, te, &acc, &tloss, &e) != 0) {
			fprintf(stderr, "bench_trainer: %s\n", e.msg);
			exit(1);
		}
		t2 = now_s();
		total += t1 - t0;
		total_cpu += c1 - c0;
		printf("  epoch %d: %.2f s (cpu %.2f s, %.0f samples/s), train loss %.4f, "
		       "test loss %.4f, test accuracy %.2f %% (eval %.2f s)\n",
		       ep, t1 - t0, c1 - c0, (double)steps / (t1 - t0), (double)loss, (double)tloss,
		       100.0 * (double)acc, t2 - t1);
	}
	printf("  mean epoch: %.2f s (cpu %.2f s)\n", total / epochs, total_cpu / epochs);
	cfl_model_free(m);
}

int main(int argc, char **argv)
{
	int epochs = (int)arg(argc, argv, 1, 3, 1, 20);
	struct cfl_trainer_cfg mlp, sm;
	struct cfl_dataset tr, te;
	struct cfl_err e = {0};
	double t0;

	cfl_trainer_cfg_default(&mlp);
	mlp.lr = (float)arg(argc, argv, 2, mlp.lr, 1e-6, 100);
	mlp.batch = (int)arg(argc, argv, 4, mlp.batch, 1, 4096);
	sm = mlp;
	sm.arch = CFL_ARCH_SOFTMAX;
	sm.lr = (float)arg(argc, argv, 3, 0.1, 1e-6, 100);
	t0 = now_s();
	if (cfl_dataset_load_fashion_mnist(NULL, 0, &tr, &e) != 0 ||
	    cfl_dataset_load_fashion_mnist(NULL, 1, &te, &e) != 0) {
		fprintf(stderr, "bench_trainer: %s (install dataset-fashion-mnist)\n", e.msg);
		return 1;
	}
	printf("fashion-mnist: %zu training, %zu test images loaded in %.2f s\n", tr.n, te.n,
	       now_s() - t0);
	run("mlp 784-128-10", &mlp, epochs, &tr, &te);
	run("softmax 784-10", &sm, epochs, &tr, &te);
	cfl_dataset_release(&tr);
	cfl_dataset_release(&te);
	return 0;
}
