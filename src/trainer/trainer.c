/* The built-in trainer: softmax regression and a one-hidden-layer ReLU MLP, mini-batch SGD on
 * cross-entropy (docs/trainer.md).
 *
 * While training, each layer's weight is held transposed, [in][out], unlike nn.Linear's
 * [out][in] in the model. Then every hot loop is an axpy over a contiguous row of `out`
 * floats (y += a * row), which gcc vectorises at -O2 without -ffast-math (a dot product is a
 * reduction, which it may not reorder), and a zero input (half of Fashion-MNIST's pixels, most
 * of the digits') skips its whole row in both the forward pass and the weight update. The
 * transposes in and out cost one pass over the weights per cfl_trainer_train call.
 *
 * Mini-batch SGD without a gradient buffer: the whole batch is run forward and its error
 * terms computed with the weights as they were at the start of the batch; only then is each
 * sample's contribution -lr/B * input * delta applied. The weight gradient of a layer depends
 * on its input and the delta alone, not on its own weights, so this is exactly the batch
 * update. Both passes loop over the weight rows outermost and the batch's samples inside, so
 * a row (512 bytes for 128 hidden units) is fetched once per batch rather than once per
 * sample; every sum still adds its terms in the same order, so results do not depend on the
 * loop order, only on the data, the seed and the compiler's float semantics. */
#include "cfl/trainer.h"

#include "trainer/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAYERS     2
#define AXPY_BLOCK     8
#define EVAL_BATCH     64
#define MAX_SCRATCH    ((size_t)1 << 26) /* floats of batch activations */
#define RNG_INIT       0x1417u
#define RNG_EPOCH_BASE 0xe90c0000u

struct layer {
	size_t in, out;
	float *wt;                  /* [in][out] */
	float *b;                   /* [out] */
	struct cfl_tensor *tw, *tb; /* the model's tensors: weight [out][in], bias [out] */
};

struct net {
	int nl; /* layers: 1 softmax, 2 MLP */
	struct layer l[MAX_LAYERS];
};

static const char *const names[2][MAX_LAYERS][2] = {
        [CFL_ARCH_SOFTMAX] = {{"linear.weight", "linear.bias"}, {NULL, NULL}},
        [CFL_ARCH_MLP] = {{"fc1.weight", "fc1.bias"}, {"fc2.weight", "fc2.bias"}},
};

void cfl_trainer_cfg_default(struct cfl_trainer_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->arch = CFL_ARCH_MLP;
	c->hidden = 128;
	c->lr = 0.05f;
	c->epochs = 1;
	c->batch = 32;
	c->seed = 1;
}

static int check_cfg(const struct cfl_trainer_cfg *c, int need_hidden, struct cfl_err *e)
{
	if (c == NULL)
		return cfl_err_set(e, CFL_EINVAL, "no trainer configuration");
	if (c->arch != CFL_ARCH_SOFTMAX && c->arch != CFL_ARCH_MLP)
		return cfl_err_set(e, CFL_EINVAL, "unknown architecture %d", c->arch);
	if (need_hidden && c->arch == CFL_ARCH_MLP &&
	    (c->hidden < 1 || c->hidden > CFL_TRAINER_MAX_HIDDEN))
		return cfl_err_set(e, CFL_EINVAL, "hidden units %d not in 1..%d", c->hidden,
		                   CFL_TRAINER_MAX_HIDDEN);
	if (!(c->lr > 0.0f) || !isfinite(c->lr))
		return cfl_err_set(e, CFL_EINVAL, "learning rate must be a positive number");
	if (c->epochs < 1 || c->epochs > CFL_TRAINER_MAX_EPOCHS)
		return cfl_err_set(e, CFL_EINVAL, "epochs %d not in 1..%d", c->epochs,
		                   CFL_TRAINER_MAX_EPOCHS);
	if (c->batch < 1 || c->batch > CFL_TRAINER_MAX_BATCH)
		return cfl_err_set(e, CFL_EINVAL, "batch %d not in 1..%d", c->batch,
		                   CFL_TRAINER_MAX_BATCH);
	return 0;
}

static int check_sizes(size_t dim, size_t classes, struct cfl_err *e)
{
	if (dim < 1 || dim > CFL_TRAINER_MAX_DIM)
		return cfl_err_set(e, CFL_EINVAL, "input size %zu not in 1..%d", dim,
		                   CFL_TRAINER_MAX_DIM);
	if (classes < 2 || classes > CFL_TRAINER_MAX_CLASSES)
		return cfl_err_set(e, CFL_EINVAL, "class count %zu not in 2..%d", classes,
		                   CFL_TRAINER_MAX_CLASSES);
	return 0;
}

/* Adds a [out][in] weight and an [out] bias, uniform in +-1/sqrt(in). */
static int init_layer(struct cfl_model *m, const char *const nm[2], size_t in, size_t out,
                      struct cfl__rng *r)
{
	int64_t ws[2] = {(int64_t)out, (int64_t)in}, bs[1] = {(int64_t)out};
	double k = 1.0 / sqrt((double)in);
	int rc;

	if ((rc = cfl_model_add(m, nm[0], ws, 2, NULL)) != 0 ||
	    (rc = cfl_model_add(m, nm[1], bs, 1, NULL)) != 0)
		return rc;
	for (int i = 0; i < 2; i++) {
		struct cfl_tensor *t = cfl_model_find(m, nm[i]);

		for (size_t j = 0; j < t->count; j++)
			t->data[j] = (float)((2.0 * cfl__rng_double(r) - 1.0) * k);
	}
	return 0;
}

int cfl_trainer_init(const struct cfl_trainer_cfg *cfg, size_t dim, size_t classes,
                     struct cfl_model **out, struct cfl_err *e)
{
	struct cfl_model *m = NULL;
	struct cfl__rng r;
	int rc;

	*out = NULL;
	if ((rc = check_cfg(cfg, 1, e)) != 0 || (rc = check_sizes(dim, classes, e)) != 0)
		return rc;
	if ((rc = cfl_model_new(&m)) != 0)
		return cfl_err_set(e, rc, "cannot create model: %s", cfl_strerror(rc));
	cfl__rng_seed(&r, cfg->seed, RNG_INIT);
	if (cfg->arch == CFL_ARCH_SOFTMAX)
		rc = init_layer(m, names[CFL_ARCH_SOFTMAX][0], dim, classes, &r);
	else if ((rc = init_layer(m, names[CFL_ARCH_MLP][0], dim, (size_t)cfg->hidden, &r)) == 0)
		rc = init_layer(m, names[CFL_ARCH_MLP][1], (size_t)cfg->hidden, classes, &r);
	if (rc != 0) {
		cfl_model_free(m);
		return cfl_err_set(e, rc, "cannot create model: %s", cfl_strerror(rc));
	}
	*out = m;
	return 0;
}

static int all_finite(const struct cfl_tensor *t)
{
	for (size_t i = 0; i < t->count; i++)
		if (!isfinite(t->data[i]))
			return 0;
	return 1;
}

/* Finds layer i's tensors and checks them: weight [out][in], bias [out], values finite. The
 * layer's `in` is given; a `want_out` of 0 takes `out` from the model (the hidden size). */
static int bind_layer(const struct cfl_model *m, const char *const nm[2], struct layer *l,
                      size_t in, size_t want_out, struct cfl_err *e)
{
	struct cfl_tensor *w = cfl_model_find(m, nm[0]), *b = cfl_model_find(m, nm[1]);

	if (w == NULL || b == NULL)
		return cfl_err_set(e, CFL_EINVAL, "model has no tensor '%s'",
		                   w == NULL ? nm[0] : nm[1]);
	if (w->ndim != 2 || w->shape[0] < 1 || w->shape[0] > CFL_TRAINER_MAX_HIDDEN ||
	    (size_t)w->shape[1] != in || (want_out != 0 && (size_t)w->shape[0] != want_out)) {
		if (want_out == 0)
			return cfl_err_set(e, CFL_EINVAL,
			                   "tensor '%s' does not have shape [1..%d, %zu]", nm[0],
			                   CFL_TRAINER_MAX_HIDDEN, in);
		return cfl_err_set(e, CFL_EINVAL, "tensor '%s' does not have shape [%zu, %zu]",
		                   nm[0], want_out, in);
	}
	if (b->ndim != 1 || b->shape[0] != w->shape[0])
		return cfl_err_set(e, CFL_EINVAL, "tensor '%s' does not have shape [%lld]", nm[1],
		                   (long long)w->shape[0]);
	if (!all_finite(w) || !all_finite(b))
		return cfl_err_set(e, CFL_EINVAL, "tensor '%s' or '%s' has a non-finite value",
		                   nm[0], nm[1]);
	l->in = in;
	l->out = (size_t)w->shape[0];
	l->tw = w;
	l->tb = b;
	return 0;
}

static void net_release(struct net *n)
{
	for (int i = 0; i < n->nl; i++) {
		free(n->l[i].wt);
		free(n->l[i].b);
	}
	memset(n, 0, sizeof(*n));
}

/* Checks `m` against `arch` and the data's sizes, and makes the transposed working copies. */
static int net_bind(struct net *n, const struct cfl_model *m, int arch, const struct cfl_dataset *d,
                    struct cfl_err *e)
{
	int rc;

	memset(n, 0, sizeof(*n));
	if ((rc = check_sizes(d->dim, d->classes, e)) != 0)
		return rc;
	n->nl = arch == CFL_ARCH_MLP ? 2 : 1;
	if ((rc = bind_layer(m, names[arch][0], &n->l[0], d->dim, n->nl == 1 ? d->classes : 0,
	                     e)) != 0 ||
	    (n->nl == 2 &&
	     (rc = bind_layer(m, names[arch][1], &n->l[1], n->l[0].out, d->classes, e)) != 0)) {
		n->nl = 0;
		return rc;
	}
	for (int i = 0; i < n->nl; i++) {
		struct layer *l = &n->l[i];

		l->wt = malloc(l->in * l->out * sizeof(float));
		l->b = malloc(l->out * sizeof(float));
		if (l->wt == NULL || l->b == NULL) {
			net_release(n);
			return cfl_err_set(e, CFL_ENOMEM, "out of memory");
		}
		for (size_t o = 0; o < l->out; o++)
			for (size_t j = 0; j < l->in; j++)
				l->wt[j * l->out + o] = l->tw->data[o * l->in + j];
		memcpy(l->b, l->tb->data, l->out * sizeof(float));
	}
	return 0;
}

/* Writes the working copies back into the model's tensors. */
static void net_store(const struct net *n)
{
	for (int i = 0; i < n->nl; i++) {
		const struct layer *l = &n->l[i];

		for (size_t o = 0; o < l->out; o++)
			for (size_t j = 0; j < l->in; j++)
				l->tw->data[o * l->in + j] = l->wt[j * l->out + o];
		memcpy(l->tb->data, l->b, l->out * sizeof(float));
	}
}

/* y[0..n) += a * x[0..n): the loop everything reduces to. In blocks of a fixed AXPY_BLOCK
 * floats, because gcc's -O2 cost model ("very cheap") vectorises only loops that need no
 * scalar remainder: the fixed inner loop becomes SSE instructions, the rest a short tail. */
static void axpy(float *restrict y, float a, const float *restrict x, size_t n)
{
	size_t i = 0;

	for (; i + AXPY_BLOCK <= n; i += AXPY_BLOCK)
		for (size_t k = 0; k < AXPY_BLOCK; k++)
			y[i + k] += a * x[i + k];
	for (; i < n; i++)
		y[i] += a * x[i];
}

/* Scratch of one batch: per layer, `batch` rows of outputs and of error terms. */
struct scratch {
	float *act[MAX_LAYERS], *delta[MAX_LAYERS];
	const float **xs; /* the batch's inputs, rows of the data set */
	uint8_t *y;       /* and their labels */
};

/* Sample b's input to layer i: a data row, or the previous layer's output. */
static const float *input_of(const struct net *n, const struct scratch *s, int i, size_t b)
{
	return i == 0 ? s->xs[b] : s->act[i - 1] + b * n->l[i].in;
}

/* Layer i on the batch: act_i = W in + b, then ReLU unless it is the output. The loop runs
 * over the weight rows outermost, so that each row is read once per batch, not per sample;
 * every output still sums its terms in input order. Zero inputs skip their row. */
static void layer_forward(const struct net *n, struct scratch *s, int i, size_t nb)
{
	const struct layer *l = &n->l[i];
	float *y = s->act[i];

	for (size_t b = 0; b < nb; b++)
		memcpy(y + b * l->out, l->b, l->out * sizeof(float));
	for (size_t j = 0; j < l->in; j++) {
		const float *row = l->wt + j * l->out;

		for (size_t b = 0; b < nb; b++) {
			float v = input_of(n, s, i, b)[j];

			if (v != 0.0f)
				axpy(y + b * l->out, v, row, l->out);
		}
	}
	if (i < n->nl - 1)
		for (size_t k = 0; k < nb * l->out; k++)
			y[k] = y[k] > 0.0f ? y[k] : 0.0f;
}

/* Turns scores z[0..k) into softmax probabilities in place; returns -log p[label], computed
 * from the scores (log-sum-exp) so that it stays exact when p[label] underflows. */
static double softmax_xent(float *z, size_t k, unsigned label)
{
	float max = z[0], zl;
	double sum = 0.0;

	for (size_t c = 1; c < k; c++)
		max = z[c] > max ? z[c] : max;
	zl = z[label] - max;
	for (size_t c = 0; c < k; c++) {
		z[c] = expf(z[c] - max);
		sum += z[c];
	}
	for (size_t c = 0; c < k; c++)
		z[c] = (float)(z[c] / sum);
	return log(sum) - (double)zl;
}

/* Runs the batch (s->xs, s->y) forward: every layer's outputs in s->act, the probabilities in
 * the last. Returns the summed cross-entropy. */
static double net_forward(const struct net *n, struct scratch *s, size_t nb)
{
	size_t k = n->l[n->nl - 1].out;
	double loss = 0.0;

	for (int i = 0; i < n->nl; i++)
		layer_forward(n, s, i, nb);
	for (size_t b = 0; b < nb; b++)
		loss += softmax_xent(s->act[n->nl - 1] + b * k, k, s->y[b]);
	return loss;
}

static void scratch_free(struct scratch *s)
{
	free(s->xs);
	free(s->y);
	for (int i = 0; i < MAX_LAYERS; i++) {
		free(s->act[i]);
		free(s->delta[i]);
	}
	memset(s, 0, sizeof(*s));
}

/* Room for batches of up to `batch` samples; CFL_EINVAL if that is over MAX_SCRATCH. */
static int scratch_alloc(struct scratch *s, const struct net *n, size_t batch)
{
	int ok;

	memset(s, 0, sizeof(*s));
	for (int i = 0; i < n->nl; i++)
		if (n->l[i].out > MAX_SCRATCH / batch)
			return CFL_EINVAL;
	s->xs = malloc(batch * sizeof(*s->xs));
	s->y = malloc(batch);
	ok = s->xs != NULL && s->y != NULL;
	for (int i = 0; i < n->nl; i++) {
		s->act[i] = malloc(batch * n->l[i].out * sizeof(float));
		s->delta[i] = malloc(batch * n->l[i].out * sizeof(float));
		ok = ok && s->act[i] != NULL && s->delta[i] != NULL;
	}
	if (!ok) {
		scratch_free(s);
		return CFL_ENOMEM;
	}
	return 0;
}

/* Back-propagates sample b's error terms: the output's p - onehot(label), then through each
 * hidden layer, delta_i = (W_{i+1}^T delta_{i+1}) * relu'(act_i). */
static void net_backward(const struct net *n, const struct scratch *s, size_t b)
{
	int last = n->nl - 1;
	size_t k = n->l[last].out;
	float *dz = s->delta[last] + b * k;

	memcpy(dz, s->act[last] + b * k, k * sizeof(float));
	dz[s->y[b]] -= 1.0f;
	for (int i = last - 1; i >= 0; i--) {
		const struct layer *up = &n->l[i + 1];
		const float *a = s->act[i] + b * up->in, *dn = s->delta[i + 1] + b * up->out;
		float *dh = s->delta[i] + b * up->in;

		for (size_t j = 0; j < up->in; j++) {
			const float *row = up->wt + j * up->out;
			float g = 0.0f;

			if (a[j] > 0.0f)
				for (size_t o = 0; o < up->out; o++)
					g += row[o] * dn[o];
			dh[j] = g;
		}
	}
}

/* Applies the batch's update: W -= scale * input * delta^T, b -= scale * delta; weight row
 * outermost, as in the forward pass, and the samples in order within each row. */
static void net_update(struct net *n, const struct scratch *s, size_t nb, float scale)
{
	for (int i = 0; i < n->nl; i++) {
		struct layer *l = &n->l[i];
		const float *dl = s->delta[i];

		for (size_t b = 0; b < nb; b++)
			axpy(l->b, -scale, dl + b * l->out, l->out);
		for (size_t j = 0; j < l->in; j++) {
			float *row = l->wt + j * l->out;

			for (size_t b = 0; b < nb; b++) {
				float v = input_of(n, s, i, b)[j];

				if (v != 0.0f)
					axpy(row, -scale * v, dl + b * l->out, l->out);
			}
		}
	}
}

/* Points the scratch at samples idx[0..nb) (or start..start+nb when idx is NULL). */
static void load_batch(struct scratch *s, const struct cfl_dataset *d, const size_t *idx,
                       size_t start, size_t nb)
{
	for (size_t b = 0; b < nb; b++) {
		size_t i = idx != NULL ? idx[start + b] : start + b;

		s->xs[b] = d->x + i * d->dim;
		s->y[b] = d->y[i];
	}
}

/* One epoch over d in the order `perm`; returns the sum of the samples' losses. */
static double train_epoch(struct net *n, struct scratch *s, const struct cfl_dataset *d,
                          const size_t *perm, size_t batch, float lr)
{
	double loss = 0.0;

	for (size_t start = 0; start < d->n; start += batch) {
		size_t nb = d->n - start < batch ? d->n - start : batch;

		load_batch(s, d, perm, start, nb);
		loss += net_forward(n, s, nb);
		for (size_t b = 0; b < nb; b++)
			net_backward(n, s, b);
		net_update(n, s, nb, lr / (float)nb);
	}
	return loss;
}

static int check_labels(const struct cfl_dataset *d, struct cfl_err *e)
{
	if (d == NULL || (d->n > 0 && (d->x == NULL || d->y == NULL)))
		return cfl_err_set(e, CFL_EINVAL, "no data");
	for (size_t i = 0; i < d->n; i++)
		if (d->y[i] >= d->classes)
			return cfl_err_set(e, CFL_EINVAL, "sample %zu has label %u of %zu classes",
			                   i, d->y[i], d->classes);
	return 0;
}

int cfl_trainer_train(const struct cfl_trainer_cfg *cfg, struct cfl_model *m,
                      const struct cfl_dataset *d, uint64_t *steps, float *mean_loss,
                      struct cfl_err *e)
{
	struct scratch s = {0};
	struct net n;
	size_t *perm = NULL, batch;
	double loss = 0.0;
	int rc;

	if (steps != NULL)
		*steps = 0;
	if (mean_loss != NULL)
		*mean_loss = 0.0f;
	if ((rc = check_cfg(cfg, 0, e)) != 0 || (rc = check_labels(d, e)) != 0)
		return rc;
	if (m == NULL)
		return cfl_err_set(e, CFL_EINVAL, "no model");
	if ((rc = net_bind(&n, m, cfg->arch, d, e)) != 0)
		return rc;
	if (d->n == 0)
		goto out;
	batch = (size_t)cfg->batch < d->n ? (size_t)cfg->batch : d->n;
	perm = malloc(d->n * sizeof(*perm));
	if (perm == NULL || (rc = scratch_alloc(&s, &n, batch)) != 0) {
		rc = cfl_err_set(e, rc == CFL_EINVAL ? rc : CFL_ENOMEM,
		                 rc == CFL_EINVAL ? "batch too large for the model"
		                                  : "out of memory");
		goto out;
	}
	for (int ep = 0; ep < cfg->epochs; ep++) {
		struct cfl__rng r;

		/* Each epoch's order from the seed and the epoch alone, not from the previous
		 * order, so that it does not depend on how the epochs were called. */
		for (size_t i = 0; i < d->n; i++)
			perm[i] = i;
		cfl__rng_seed(&r, cfg->seed, RNG_EPOCH_BASE + (uint64_t)ep);
		cfl__rng_shuffle(&r, perm, d->n);
		loss += train_epoch(&n, &s, d, perm, batch, cfg->lr);
	}
	net_store(&n);
	if (steps != NULL)
		*steps = (uint64_t)cfg->epochs * d->n;
	if (mean_loss != NULL)
		*mean_loss = (float)(loss / ((double)cfg->epochs * (double)d->n));
out:
	free(perm);
	scratch_free(&s);
	net_release(&n);
	return rc;
}

int cfl_trainer_eval(const struct cfl_model *m, const struct cfl_dataset *d, float *accuracy,
                     float *loss, struct cfl_err *e)
{
	size_t correct = 0, k, batch;
	struct scratch s = {0};
	double sum = 0.0;
	struct net n;
	int rc, arch;

	if (m == NULL)
		return cfl_err_set(e, CFL_EINVAL, "no model");
	if ((rc = check_labels(d, e)) != 0)
		return rc;
	if (d->n == 0)
		return cfl_err_set(e, CFL_EINVAL, "no data to evaluate on");
	arch = cfl_model_find(m, names[CFL_ARCH_MLP][0][0]) != NULL ? CFL_ARCH_MLP
	                                                            : CFL_ARCH_SOFTMAX;
	if ((rc = net_bind(&n, m, arch, d, e)) != 0)
		return rc;
	batch = d->n < EVAL_BATCH ? d->n : EVAL_BATCH;
	if (scratch_alloc(&s, &n, batch) != 0) {
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
		goto out;
	}
	k = d->classes;
	for (size_t start = 0; start < d->n; start += batch) {
		size_t nb = d->n - start < batch ? d->n - start : batch;

		load_batch(&s, d, NULL, start, nb);
		sum += net_forward(&n, &s, nb);
		for (size_t b = 0; b < nb; b++) {
			const float *p = s.act[n.nl - 1] + b * k;
			size_t best = 0;

			for (size_t c = 1; c < k; c++)
				best = p[c] > p[best] ? c : best;
			correct += best == s.y[b];
		}
	}
	if (accuracy != NULL)
		*accuracy = (float)((double)correct / (double)d->n);
	if (loss != NULL)
		*loss = (float)(sum / (double)d->n);
out:
	scratch_free(&s);
	net_release(&n);
	return rc;
}
