/* Internal to the trainer module: the built-in executor's reading of its settings, exposed for
 * the executor's fuzz target (fuzz/fuzz_executor.c). */
#ifndef CFL_TRAINER_INT_H
#define CFL_TRAINER_INT_H

#include "cfl/err.h"
#include "cfl/trainer.h"

#include <jansson.h>

/* Reads the training settings of a job's executor section (arch, hidden, lr, epochs, batch,
 * seed; docs/trainer.md) into `c`, each checked against its range before it is converted.
 * Returns 0 or CFL_ECONFIG with `e`. */
int cfl__trainer_builtin_cfg(json_t *ex, struct cfl_trainer_cfg *c, struct cfl_err *e);

#endif
