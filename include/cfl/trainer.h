/* The built-in trainer: softmax regression or a one-hidden-layer MLP, trained by mini-batch
 * SGD on cross-entropy, in plain C (docs/trainer.md).
 *
 * The parameters live in a `struct cfl_model` (cfl/model.h) under PyTorch's nn.Linear names
 * and layouts, so a model trained here loads into the equivalent PyTorch module and back:
 *   CFL_ARCH_SOFTMAX  "linear.weight" [classes, dim], "linear.bias" [classes]
 *   CFL_ARCH_MLP      "fc1.weight" [hidden, dim], "fc1.bias" [hidden],  (ReLU)
 *                     "fc2.weight" [classes, hidden], "fc2.bias" [classes]
 * A model received from elsewhere (a FedAvg server) is checked against these names and shapes
 * and for non-finite values before it is used.
 *
 * Everything is deterministic: the same configuration, seed, model and data give the same
 * bits on the same build. Single-threaded; nothing is global, so distinct models may be
 * trained from distinct threads. Nothing blocks. */
#ifndef CFL_TRAINER_H
#define CFL_TRAINER_H

#include "cfl/dataset.h"
#include "cfl/err.h"
#include "cfl/model.h"

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>

enum cfl_arch {
	CFL_ARCH_SOFTMAX = 0, /* multinomial logistic regression */
	CFL_ARCH_MLP = 1      /* dim -> hidden (ReLU) -> classes */
};

#define CFL_TRAINER_MAX_HIDDEN  4096
#define CFL_TRAINER_MAX_DIM     (1 << 20)
#define CFL_TRAINER_MAX_CLASSES 256
#define CFL_TRAINER_MAX_BATCH   65536
#define CFL_TRAINER_MAX_EPOCHS  10000

struct cfl_trainer_cfg {
	int arch;      /* enum cfl_arch */
	int hidden;    /* MLP hidden units, 1..CFL_TRAINER_MAX_HIDDEN (e.g. 128) */
	float lr;      /* SGD learning rate, > 0 (e.g. 0.05) */
	int epochs;    /* passes over the data per cfl_trainer_train call, >= 1 */
	int batch;     /* mini-batch size, 1..CFL_TRAINER_MAX_BATCH (e.g. 32) */
	uint64_t seed; /* weight initialisation and the per-epoch shuffles */
};

/* Fills `c` with the defaults: MLP, 128 hidden units, lr 0.05, 1 epoch, batch 32, seed 1. */
void cfl_trainer_cfg_default(struct cfl_trainer_cfg *c);

/* Creates a freshly initialised model for `dim` inputs and `classes` outputs: weights and
 * biases uniform in +-1/sqrt(fan_in) from a PRNG seeded with cfg->seed (nn.Linear's default
 * range). Returns 0 and *out (the caller frees it with cfl_model_free), CFL_EINVAL for a bad
 * configuration or size (message in `e`), or CFL_ENOMEM. */
int cfl_trainer_init(const struct cfl_trainer_cfg *cfg, size_t dim, size_t classes,
                     struct cfl_model **out, struct cfl_err *e);

/* Trains `m` in place for cfg->epochs passes over `d` in mini-batches of cfg->batch (the last
 * batch of an epoch may be smaller), each epoch in an order shuffled from cfg->seed and the
 * epoch number (a caller that wants new orders each FedAvg round varies the seed). The model
 * must have the tensors of cfg->arch for d->dim inputs and d->classes outputs; the hidden size
 * is taken from the model. *steps (if not NULL) receives the samples processed,
 * epochs * d->n, which FedAvg uses as the client's weight; *mean_loss (if not NULL) the mean
 * cross-entropy over those samples, each measured before its batch's update. An empty `d`
 * trains nothing (*steps = 0, *mean_loss = 0). Returns 0, CFL_EINVAL (bad configuration, model
 * or data; message in `e`; `m` unchanged) or CFL_ENOMEM. */
int cfl_trainer_train(const struct cfl_trainer_cfg *cfg, struct cfl_model *m,
                      const struct cfl_dataset *d, uint64_t *steps, float *mean_loss,
                      struct cfl_err *e);

/* Evaluates `m` (either architecture, recognised by its tensor names) on `d`: *accuracy (if
 * not NULL) the fraction of samples whose highest score is their label, *loss (if not NULL)
 * the mean cross-entropy. `d` must not be empty. Returns 0, CFL_EINVAL or CFL_ENOMEM. */
int cfl_trainer_eval(const struct cfl_model *m, const struct cfl_dataset *d, float *accuracy,
                     float *loss, struct cfl_err *e);

/* The built-in executor: this trainer on a named dataset, as the server (evaluation, initial
 * model) and the sites (training) both run it. */
/* The executor section of config.json: {"type": "builtin", "dataset": "fashion-mnist" |
 * "digits", "arch": "mlp" | "softmax", "hidden", "lr", "epochs", "batch", "seed",
 * "alpha"}. */
int cfl_trainer_builtin_init_model(json_t *executor, struct cfl_model **out, struct cfl_err *e);
/* Test accuracy and loss of `m` on the dataset's test part; CFL_ENOENT when the data is not on
 * this machine. The test set is loaded once and cached. */
int cfl_trainer_builtin_eval(json_t *executor, const struct cfl_model *m, float *acc, float *loss,
                             struct cfl_err *e);
/* Local training of site `site` of `n_sites` (its deterministic split) on m, in place, for
 * round `round` (each round shuffles differently). */
int cfl_trainer_builtin_train(json_t *executor, int site, int n_sites, int round,
                              struct cfl_model *m, uint64_t *steps, float *loss, struct cfl_err *e);
/* What each of `n_sites` sites reports when it trains a round honestly: shares[i] = the
 * samples of site i's split times the epochs (1 for the synthetic data), computed from the same
 * deterministic split the sites train on (the server bounds the sites' FedAvg weights by it).
 * Loads the data like cfl_trainer_builtin_eval (same cache, same thread rules). Returns 0, or
 * CFL_ENOENT when the data is not on this machine, CFL_ECONFIG, CFL_EINVAL, CFL_ENOMEM. */
int cfl_trainer_builtin_shares(json_t *executor, int n_sites, uint64_t *shares, struct cfl_err *e);
/* Central baseline: the same model trained on all the training data for `epochs`. */
int cfl_trainer_builtin_central(json_t *executor, int epochs, float *acc, struct cfl_err *e);
void cfl_trainer_builtin_release(void);

/* The central baseline of a job with the built-in executor: the same model trained on all the
 * training data for `epochs` epochs, evaluated on the test set. Blocks (seconds to minutes). */
int cfl_trainer_central_baseline(const char *job_dir, int epochs, float *accuracy,
                                 struct cfl_err *e);

#endif
