// optim_dump: runs kiln's optimizers and LR schedules for tests/parity/check_optim.py,
// which replays them with torch.optim (and a Lion written from the formula).
//
//   optim_dump step OUT.safetensors STEPS [swap_at=K swap_to=NAME] [key=value ...]
//     A small model whose parameters are all filled with normal(0, 0.5) (norm
//     weights around 1), then STEPS optimizer steps on made-up gradients
//     (normal, a different scale per tensor), each clipped like the trainer does
//     and taken at lr_at(step). With swap_at=K the state is reset before step K
//     and the optimizer becomes swap_to, its opt_step counting from 1 again.
//     Writes init.<name>, grad<k>.<name> (k = 1..STEPS), final.<name>, lr (STEPS),
//     and metadata kiln.json: the settings and penalty_value of the initial weights.
//   optim_dump lr [key=value ...]
//     Prints "step lr" (%.9g) for step = 0 .. train.steps-1.
#include "kiln/config.h"
#include "kiln/model.h"
#include "train/optim.h"
#include "core/safetensors.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char *OPT[] = {"adamw", "sgd", "lion"};

static int apply_settings(KilnConfig *cfg, int argc, char **argv, int *swap_at, int *swap_to) {
    KilnErr err;
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) return fprintf(stderr, "bad setting %s\n", argv[i]), 2;
        *eq = 0;
        const char *key = argv[i], *val = eq + 1;
        if (!strcmp(key, "swap_at")) {
            *swap_at = atoi(val);
        } else if (!strcmp(key, "swap_to")) {
            *swap_to = -1;
            for (int k = 0; k < 3; k++)
                if (!strcmp(val, OPT[k])) *swap_to = k;
            if (*swap_to < 0) return fprintf(stderr, "unknown optimizer %s\n", val), 2;
        } else if (kiln_config_set(cfg, key, val, "argv", &err)) {
            return fprintf(stderr, "%s\n", err.msg), 2;
        }
    }
    if (kiln_config_finalize(cfg, &err)) return fprintf(stderr, "%s\n", err.msg), 2;
    return 0;
}

static int print_lr(KilnConfig *cfg, int argc, char **argv) {
    int swap_at = 0, swap_to = 0;
    int rc = apply_settings(cfg, argc, argv, &swap_at, &swap_to);
    if (rc) return rc;
    for (int s = 0; s < cfg->train.steps; s++) printf("%d %.9g\n", s, lr_at(&cfg->train, s));
    return 0;
}

typedef struct {
    KilnStTensor t[4096];
    char names[4096][128];
    int n;
} List;

// Copies the named views of buf under a prefix (later steps overwrite buf).
static void add_buffer(List *l, KilnModel *m, float *buf, const char *prefix) {
    int n = gpt_named_tensors(m, buf, NULL);
    KilnNamedTensor *nt = calloc((size_t)n, sizeof *nt);
    gpt_named_tensors(m, buf, nt);
    for (int i = 0; i < n && l->n < 4096; i++) {
        long count = nt[i].shape[0] * (nt[i].ndim == 2 ? nt[i].shape[1] : 1);
        float *copy = malloc(sizeof(float) * count);
        memcpy(copy, nt[i].data, sizeof(float) * count);
        snprintf(l->names[l->n], 128, "%s%s", prefix, nt[i].name);
        KilnStTensor *t = &l->t[l->n++];
        *t = (KilnStTensor){l->names[l->n - 1], copy, nt[i].ndim, {nt[i].shape[0], nt[i].shape[1]}};
    }
    free(nt);
}

static char *settings_json(const KilnConfig *c, int steps, int swap_at, int swap_to, double penalty) {
    const KilnTrainConfig *t = &c->train;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "optimizer", OPT[t->optimizer]);
    cJSON_AddNumberToObject(j, "swap_at", swap_at);
    cJSON_AddStringToObject(j, "swap_to", OPT[swap_to]);
    cJSON_AddNumberToObject(j, "steps", steps);
    cJSON_AddNumberToObject(j, "beta1", t->beta1);
    cJSON_AddNumberToObject(j, "beta2", t->beta2);
    cJSON_AddNumberToObject(j, "eps", t->eps);
    cJSON_AddNumberToObject(j, "momentum", t->momentum);
    cJSON_AddBoolToObject(j, "nesterov", t->nesterov);
    cJSON_AddNumberToObject(j, "weight_decay", t->weight_decay);
    cJSON_AddBoolToObject(j, "decay_embeddings", t->decay_embeddings);
    cJSON_AddNumberToObject(j, "l1", t->l1);
    cJSON_AddNumberToObject(j, "l2", t->l2);
    cJSON_AddNumberToObject(j, "grad_clip", t->grad_clip);
    char pen[64];
    snprintf(pen, sizeof pen, "%.17g", penalty);  // a string keeps every digit of the double
    cJSON_AddStringToObject(j, "penalty", pen);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static int dump_steps(KilnConfig *cfg, const char *out, int steps, int argc, char **argv) {
    int swap_at = 0, swap_to = 0;
    cfg->model.vocab_size = 24, cfg->model.block_size = 8, cfg->model.n_layer = 2;
    cfg->model.n_head = 2, cfg->model.n_embd = 8;
    cfg->train.warmup_steps = 0, cfg->train.schedule = KILN_LR_CONSTANT;
    int rc = apply_settings(cfg, argc, argv, &swap_at, &swap_to);
    if (rc) return rc;
    if (steps < 1 || steps > 100) return fprintf(stderr, "STEPS must be in 1..100\n"), 2;
    KilnModel m;
    KilnErr err;
    if (gpt_create(&m, &cfg->model, 1, 1, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    KilnRng rng;
    kiln_rng_seed(&rng, cfg->train.seed);
    for (int id = 0; id < PT_COUNT; id++) {
        int norm = id == PT_LN1W || id == PT_LN2W || id == PT_LNFW;
        for (long k = 0; k < m.layout.size[id]; k++) m.p.t[id][k] = (norm ? 1.0f : 0.0f) + 0.5f * kiln_rng_normal(&rng);
    }
    List *l = calloc(1, sizeof *l);
    float *lrs = malloc(sizeof(float) * steps);
    add_buffer(l, &m, m.params, "init.");
    double penalty = penalty_value(&m, &cfg->train);
    KilnTrainConfig t = cfg->train;
    int opt_step = 0;
    for (int step = 1; step <= steps; step++) {
        if (step == swap_at) {  // a live optimizer swap: fresh state, opt_step from 1
            optimizer_reset_state(&m);
            t.optimizer = (KilnOptimizer)swap_to;
            opt_step = 0;
        }
        for (int id = 0; id < PT_COUNT; id++) {
            float scale = 0.25f * (float)(1 + (id + step) % 5);
            for (long k = 0; k < m.layout.size[id]; k++) m.g.t[id][k] = scale * kiln_rng_normal(&rng);
        }
        char prefix[32];
        snprintf(prefix, sizeof prefix, "grad%d.", step);
        add_buffer(l, &m, m.grads, prefix);
        lrs[step - 1] = lr_at(&t, step - 1);
        float coef = grad_clip_coef(grad_global_norm(&m), t.grad_clip);
        optimizer_step(&m, &t, lrs[step - 1], ++opt_step, coef);
    }
    add_buffer(l, &m, m.params, "final.");
    l->t[l->n++] = (KilnStTensor){"lr", lrs, 1, {steps}};
    char *js = settings_json(cfg, steps, swap_at, swap_to, penalty);
    const char *keys[] = {"kiln.json"}, *vals[] = {js};
    if (st_write(out, l->t, l->n, keys, vals, 1, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    printf("wrote %s: %d tensors\n", out, l->n);
    for (int i = 0; i < l->n; i++) free((float *)l->t[i].data);  // the copies, and lrs
    free(l);
    free(js);
    gpt_destroy(&m);
    return 0;
}

int main(int argc, char **argv) {
    KilnConfig cfg;
    kiln_config_defaults(&cfg);
    if (argc >= 2 && !strcmp(argv[1], "lr")) return print_lr(&cfg, argc - 2, argv + 2);
    if (argc >= 4 && !strcmp(argv[1], "step")) return dump_steps(&cfg, argv[2], atoi(argv[3]), argc - 4, argv + 4);
    fprintf(stderr,
            "usage: optim_dump step OUT.safetensors STEPS [swap_at=K swap_to=NAME] [key=value ...]\n"
            "       optim_dump lr [key=value ...]\n");
    return 2;
}
