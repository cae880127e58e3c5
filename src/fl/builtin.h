/* Internal: the built-in executor (the C trainer on a named dataset), as both sides use it. */
#ifndef CFL_FL_BUILTIN_H
#define CFL_FL_BUILTIN_H

#include "cfl/err.h"
#include "cfl/model.h"

#include <jansson.h>
#include <stdint.h>

/* The executor section of config.json: {"type": "builtin", "dataset": "fashion-mnist" |
 * "digits", "arch": "mlp" | "softmax", "hidden", "lr", "epochs", "batch", "seed",
 * "alpha"}. */
int cfl__builtin_init_model(json_t *executor, struct cfl_model **out, struct cfl_err *e);
/* Test accuracy and loss of `m` on the dataset's test part; CFL_ENOENT when the data is not on
 * this machine. The test set is loaded once and cached. */
int cfl__builtin_eval(json_t *executor, const struct cfl_model *m, float *acc, float *loss,
                      struct cfl_err *e);
/* Local training of site `site` of `n_sites` (its deterministic split) on m, in place, for
 * round `round` (each round shuffles differently). */
int cfl__builtin_train(json_t *executor, int site, int n_sites, int round, struct cfl_model *m,
                       uint64_t *steps, float *loss, struct cfl_err *e);
/* Central baseline: the same model trained on all the training data for `epochs`. */
int cfl__builtin_central(json_t *executor, int epochs, float *acc, struct cfl_err *e);
void cfl__builtin_release(void);

#endif
