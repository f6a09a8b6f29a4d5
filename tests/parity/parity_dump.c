// parity_dump: runs kiln on one fixed batch and writes everything PyTorch must
// reproduce (tests/parity/check_parity.py):
//   init.<name>   initial weights           logits (B,T,V), loss (1)
//   grad.<name>   gradients of step 1       step3.<name> weights after 3 AdamW steps
//   tokens, targets (B,T) as F32 (targets < 0 are ignored)
// metadata "kiln.json": the model config and optimizer settings.
// usage: parity_dump OUT.safetensors B T [key=value ...]
#include "kiln/config.h"
#include "kiln/model.h"
#include "train/optim.h"
#include "core/safetensors.h"
#include "model_json.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>


static char *settings_json(const KilnConfig *c, int B, int T) {
    cJSON *j = cJSON_CreateObject(), *m = cJSON_AddObjectToObject(j, "model"),
          *t = cJSON_AddObjectToObject(j, "train");
    const KilnModelConfig *mc = &c->model;
    model_config_json(m, mc);
    const KilnTrainConfig *tc = &c->train;
    cJSON_AddNumberToObject(t, "lr", tc->lr);
    cJSON_AddNumberToObject(t, "beta1", tc->beta1);
    cJSON_AddNumberToObject(t, "beta2", tc->beta2);
    cJSON_AddNumberToObject(t, "eps", tc->eps);
    cJSON_AddNumberToObject(t, "weight_decay", tc->weight_decay);
    cJSON_AddNumberToObject(t, "grad_clip", tc->grad_clip);
    cJSON_AddBoolToObject(t, "decay_embeddings", tc->decay_embeddings);
    cJSON_AddNumberToObject(j, "B", B);
    cJSON_AddNumberToObject(j, "T", T);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

typedef struct {
    KilnStTensor *t;
    char (*names)[128];
    int n, cap;
} List;

static void add(List *l, const char *name, const float *data, int ndim, long d0, long d1, long d2) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->t = realloc(l->t, sizeof *l->t * l->cap);
        l->names = realloc(l->names, sizeof *l->names * l->cap);
    }
    snprintf(l->names[l->n], 128, "%s", name);
    KilnStTensor *t = &l->t[l->n++];
    t->data = data;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->shape[2] = d2;
}

// Copies the named views of buf (so later steps don't overwrite them) under a prefix.
static void add_buffer(List *l, KilnModel *m, float *buf, const char *prefix) {
    int n = gpt_named_tensors(m, buf, NULL);
    KilnNamedTensor *nt = calloc((size_t)n, sizeof *nt);
    gpt_named_tensors(m, buf, nt);
    for (int i = 0; i < n; i++) {
        long count = nt[i].shape[0] * (nt[i].ndim == 2 ? nt[i].shape[1] : 1);
        float *copy = malloc(sizeof(float) * count);
        memcpy(copy, nt[i].data, sizeof(float) * count);
        char name[128];
        snprintf(name, sizeof name, "%s%s", prefix, nt[i].name);
        add(l, name, copy, nt[i].ndim, nt[i].shape[0], nt[i].shape[1], 0);
    }
    free(nt);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: parity_dump OUT.safetensors B T [key=value ...]\n");
        return 2;
    }
    int B = atoi(argv[2]), T = atoi(argv[3]);
    KilnConfig cfg;
    KilnErr err;
    kiln_config_defaults(&cfg);
    cfg.train.lr = 1e-3f;
    cfg.train.beta2 = 0.95f;
    cfg.train.weight_decay = 0.1f;
    cfg.train.grad_clip = 1.0f;
    for (int i = 4; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) return fprintf(stderr, "bad setting %s\n", argv[i]), 2;
        *eq = 0;
        if (kiln_config_set(&cfg, argv[i], eq + 1, "argv", &err)) return fprintf(stderr, "%s\n", err.msg), 2;
    }
    if (kiln_config_finalize(&cfg, &err)) return fprintf(stderr, "%s\n", err.msg), 2;
    KilnModel m;
    cfg.model.precision = cfg.train.precision;  // as the trainer passes train.precision on
    cfg.model.bf16_kernels = cfg.train.bf16_kernels;  // onednn opens them; auto stays on the sgemm here
    if (gpt_create(&m, &cfg.model, B, T, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    gpt_init_weights(&m, cfg.train.seed);
    // perturb norms and biases away from 1/0 so their gradients are exercised
    KilnRng rng;
    kiln_rng_seed(&rng, 7);
    for (int id = 0; id < PT_COUNT; id++) {
        int is_norm_or_bias = id == PT_LN1W || id == PT_LN1B || id == PT_LN2W || id == PT_LN2B ||
                              id == PT_LNFW || id == PT_LNFB || id == PT_QKVB || id == PT_ATTPROJB ||
                              id == PT_FCB || id == PT_FCPROJB;
        if (!is_norm_or_bias || !m.p.t[id]) continue;
        for (long k = 0; k < m.layout.size[id]; k++) m.p.t[id][k] += 0.1f * kiln_rng_normal(&rng);
    }
    int N = B * T, V = cfg.model.vocab_size;
    int32_t *tok = malloc(sizeof(int32_t) * N), *tgt = malloc(sizeof(int32_t) * N);
    float *ftok = malloc(sizeof(float) * N), *ftgt = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) {
        tok[i] = (int32_t)(kiln_rng_u64(&rng) % V);
        tgt[i] = i % 7 == 3 ? -1 : (int32_t)(kiln_rng_u64(&rng) % V);  // some ignored targets
        ftok[i] = (float)tok[i];
        ftgt[i] = (float)tgt[i];
    }
    List l = {0};
    add(&l, "tokens", ftok, 2, B, T, 0);
    add(&l, "targets", ftgt, 2, B, T, 0);
    add_buffer(&l, &m, m.params, "init.");
    // logits of a plain forward, then a training step
    if (gpt_forward(&m, tok, tgt, B, T, 0.0f, 0, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    float *logits = malloc(sizeof(float) * N * V), *loss = malloc(sizeof(float));
    memcpy(logits, m.a.logits, sizeof(float) * N * V);
    *loss = (float)m.loss;
    add(&l, "logits", logits, 3, B, T, V);
    add(&l, "loss", loss, 1, 1, 0, 0);
    for (int step = 1; step <= 3; step++) {
        gpt_zero_grad(&m);
        if (gpt_forward(&m, tok, tgt, B, T, 1.0f, 0, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
        gpt_backward(&m);
        if (step == 1) add_buffer(&l, &m, m.grads, "grad.");
        double norm = grad_global_norm(&m);
        adamw_step(&m, &cfg.train, cfg.train.lr, step, grad_clip_coef(norm, cfg.train.grad_clip));
    }
    add_buffer(&l, &m, m.params, "step3.");
    for (int i = 0; i < l.n; i++) l.t[i].name = l.names[i];
    char *js = settings_json(&cfg, B, T);
    const char *keys[] = {"kiln.json"};
    const char *vals[] = {js};
    if (st_write(argv[1], l.t, l.n, keys, vals, 1, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    printf("wrote %s: %d tensors, loss %.6f\n", argv[1], l.n, *loss);
    for (int i = 0; i < l.n; i++) free((float *)l.t[i].data);  // every listed tensor is a copy
    free(l.t);
    free(l.names);
    free(js);
    free(tok);
    free(tgt);
    gpt_destroy(&m);
    return 0;
}
