// test_model: the whole model's gradients against finite differences of its loss,
// for every combination of variants (positions x norm x activation x attention x
// tying x biases x dropout), per parameter tensor and per layer.
#include "gradcheck.h"
#include "kiln/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    KilnModel m;
    unsigned char *relu_sign;  // sign of every ReLU input at the unperturbed point
    int32_t tokens[10], targets[10];
    int B, T;
} Ctx;

static const uint64_t DROPOUT_SEED = 4242;

static double model_loss(void *p) {
    Ctx *c = p;
    // a "training" forward (dropout on, same masks) whose dlogits we ignore
    KilnErr err;
    if (gpt_forward(&c->m, c->tokens, c->targets, c->B, c->T, 1.0f, DROPOUT_SEED, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    return c->m.loss;
}

static long relu_inputs(const Ctx *c) { return (long)c->m.cfg.n_layer * c->m.maxB * c->m.maxT * c->m.H; }

static void model_grad(void *p) {
    Ctx *c = p;
    gpt_zero_grad(&c->m);
    model_loss(c);
    gpt_backward(&c->m);
    if (c->relu_sign)
        for (long i = 0; i < relu_inputs(c); i++) c->relu_sign[i] = c->m.a.fch[i] > 0.0f;
}

// Central differences are only valid if no ReLU input crossed zero.
static int relu_smooth(void *p) {
    Ctx *c = p;
    for (long i = 0; i < relu_inputs(c); i++)
        if ((c->m.a.fch[i] > 0.0f) != c->relu_sign[i]) return 0;
    return 1;
}

static const char *TENSOR_NAMES[PT_COUNT] = {"wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw",
                                             "attprojb", "ln2w", "ln2b", "fcw", "fcb", "fcprojw",
                                             "fcprojb", "lnfw", "lnfb", "lm_head"};

static int check_variant(int pos, int norm, int act, int gqa, int tied, int bias, int dropout) {
    KilnModelConfig mc;
    KilnConfig cfg;
    kiln_config_defaults(&cfg);
    mc = cfg.model;
    mc.vocab_size = 13;
    mc.block_size = 6;
    mc.n_layer = 2;
    mc.n_head = 4;
    mc.n_kv_head = gqa ? 2 : 4;
    mc.n_embd = 16;
    mc.ffn_hidden = 24;
    mc.pos = pos;
    mc.norm = norm;
    mc.act = act;
    mc.tied = tied;
    mc.bias = bias;
    mc.dropout = dropout ? 0.2f : 0.0f;
    mc.init_std = 0.3f;
    Ctx c = {.B = 2, .T = 5};
    KilnErr err;
    if (gpt_create(&c.m, &mc, c.B, c.T, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    gpt_init_weights(&c.m, 1);
    KilnRng rng;
    kiln_rng_seed(&rng, 2);
    for (int id = 0; id < PT_COUNT; id++) {  // norms and biases away from 1 and 0
        if (!c.m.p.t[id] || id == PT_WTE || id == PT_WPE || id == PT_LMHEAD || id == PT_QKVW ||
            id == PT_ATTPROJW || id == PT_FCW || id == PT_FCPROJW)
            continue;
        for (long k = 0; k < c.m.layout.size[id]; k++) c.m.p.t[id][k] += 0.3f * kiln_rng_normal(&rng);
    }
    for (int i = 0; i < c.B * c.T; i++) {
        c.tokens[i] = (int32_t)(kiln_rng_u64(&rng) % mc.vocab_size);
        c.targets[i] = i == 3 ? -1 : (int32_t)(kiln_rng_u64(&rng) % mc.vocab_size);
    }
    char what[128];
    snprintf(what, sizeof what, "%s/%s/%s/%s/%s/%s/%s", kiln_config_enum_name("model.pos", pos),
             kiln_config_enum_name("model.norm", norm), kiln_config_enum_name("model.act", act), gqa ? "gqa" : "mha",
             tied ? "tied" : "untied", bias ? "bias" : "nobias", dropout ? "drop" : "nodrop");
    GcOptions opt = {.h = 1e-3, .tol = 1e-2, .directions = 4, .coordinates = 0};
    if (act == KILN_ACT_RELU) {
        c.relu_sign = malloc((size_t)relu_inputs(&c));
        opt.smooth = relu_smooth;
        opt.directions = 8;  // some directions cross a kink at every step and are skipped
    }
    double worst = 0.0;
    for (int id = 0; id < PT_COUNT; id++) {
        if (!c.m.p.t[id]) continue;
        GcTensor t = {TENSOR_NAMES[id], c.m.p.t[id], c.m.g.t[id], c.m.layout.size[id]};
        int per_layer = id >= PT_LN1W && id <= PT_FCPROJB;
        int parts = per_layer ? mc.n_layer : 1;
        for (int l = 0; l < parts; l++) {
            GcOptions o = opt;
            if (per_layer) {
                o.lo = t.n / parts * l;
                o.hi = t.n / parts * (l + 1);
            }
            double e = gradcheck(what, &t, 1, model_loss, model_grad, &c, o);
            if (e > worst) worst = e;
        }
    }
    gpt_destroy(&c.m);
    free(c.relu_sign);
    return worst <= opt.tol ? 0 : 1;
}

// train.recompute: the same loss and gradients bit for bit, with one layer's
// activations kept instead of all (3 layers: first, middle and last recomputed
// or not). Two micro-batches accumulate, as with train.grad_accum.
static int check_recompute(int pos, int act, int gqa, int dropout) {
    KilnConfig cfg;
    kiln_config_defaults(&cfg);
    KilnModelConfig mc = cfg.model;
    mc.vocab_size = 13, mc.block_size = 6, mc.n_layer = 3, mc.n_head = 4, mc.n_kv_head = gqa ? 2 : 4;
    mc.n_embd = 16, mc.ffn_hidden = 24, mc.pos = pos, mc.act = act, mc.dropout = dropout ? 0.2f : 0.0f;
    mc.init_std = 0.3f;
    KilnModel m[2];
    KilnErr err;
    int32_t tokens[2][10], targets[2][10];
    KilnRng rng;
    kiln_rng_seed(&rng, 5);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 10; i++) tokens[k][i] = (int32_t)(kiln_rng_u64(&rng) % 13), targets[k][i] = (i * 7 + k) % 13;
    double loss[2] = {0, 0};
    for (int r = 0; r < 2; r++) {
        mc.recompute = r;
        if (gpt_create(&m[r], &mc, 2, 5, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
        gpt_init_weights(&m[r], 1);
        gpt_zero_grad(&m[r]);
        for (int k = 0; k < 2; k++) {
            if (gpt_forward(&m[r], tokens[k], targets[k], 2, 5, 0.5f, DROPOUT_SEED + k, &err))
                return fprintf(stderr, "%s\n", err.msg), 1;
            loss[r] += m[r].loss;
            gpt_backward(&m[r]);
        }
    }
    KilnMemPlan a = gpt_memory_plan(&m[0]), b = gpt_memory_plan(&m[1]);
    int same = loss[0] == loss[1] && !memcmp(m[0].grads, m[1].grads, sizeof(float) * m[0].layout.total) &&
               b.acts < a.acts;
    if (!same)
        fprintf(stderr, "recompute %s/%s/%s/%s: loss %.9g vs %.9g, acts %.0f vs %.0f bytes, grads %s\n",
                kiln_config_enum_name("model.pos", pos), kiln_config_enum_name("model.act", act), gqa ? "gqa" : "mha",
                dropout ? "drop" : "nodrop", loss[0], loss[1], a.acts, b.acts,
                memcmp(m[0].grads, m[1].grads, sizeof(float) * m[0].layout.total) ? "differ" : "equal");
    gpt_destroy(&m[0]);
    gpt_destroy(&m[1]);
    return !same;
}

int main(void) {
    int failed = 0, passed = 0;
    for (int pos = 0; pos < 2; pos++)
        for (int norm = 0; norm < 2; norm++)
            for (int act = 0; act < 4; act++)
                for (int gqa = 0; gqa < 2; gqa++)
                    for (int tied = 0; tied < 2; tied++)
                        for (int bias = 0; bias < 2; bias++)
                            for (int drop = 0; drop < 2; drop++) {
                                int f = check_variant(pos, norm, act, gqa, tied, bias, drop);
                                failed += f;
                                passed += !f;
                            }
    printf("variants: %d passed, %d failed\n", passed, failed);
    int rfail = 0;
    for (int pos = 0; pos < 2; pos++)
        for (int act = 0; act < 4; act++)
            for (int gqa = 0; gqa < 2; gqa++)
                for (int drop = 0; drop < 2; drop++) rfail += check_recompute(pos, act, gqa, drop);
    printf("recompute: %d of 32 variants differ\n", rfail);
    failed += rfail;
    return failed ? 1 : 0;
}
