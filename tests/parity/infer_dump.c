// infer_dump: KV-cache inference (infer.h) on fixed random weights, written for
// tests/parity/check_infer.py to recompute in PyTorch:
//   init.<name>      the weights                    tokens (T) as F32
//   lp_whole (T-1)   log p(tokens[t] | tokens[<t]), t = 1..T-1, prompt in one call
//   lp_steps (T-1)   the same, appended token by token
//   choices (NC,LC)  continuations of the context tokens[0..ctx), as F32, -1 = padding
//   lp_choices (NC)  summed log-probabilities of each continuation, scored by
//                    truncating back to ctx after each (how evaluation shares a context)
//   greedy (G)       greedy continuation of tokens[0..ctx) (sample_token, temperature 0)
// metadata "kiln.json": the model config.
// usage: infer_dump OUT.safetensors T [key=value ...]
#include "kiln/config.h"
#include "kiln/infer.h"
#include "kiln/model.h"
#include "core/safetensors.h"
#include "model_json.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

enum { NC = 3, LC = 5, G = 6 };


static char *model_json(const KilnModelConfig *mc) {
    cJSON *j = cJSON_CreateObject(), *m = cJSON_AddObjectToObject(j, "model");
    model_config_json(m, mc);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static int die(const char *what, const KilnErr *err) {
    fprintf(stderr, "%s: %s\n", what, err->msg);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: infer_dump OUT.safetensors T [key=value ...]\n");
        return 2;
    }
    int T = atoi(argv[2]);
    KilnConfig cfg;
    KilnErr err;
    kiln_config_defaults(&cfg);
    for (int i = 3; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) return fprintf(stderr, "bad setting %s\n", argv[i]), 2;
        *eq = 0;
        if (kiln_config_set(&cfg, argv[i], eq + 1, "argv", &err)) return die("config", &err);
    }
    if (kiln_config_finalize(&cfg, &err)) return die("config", &err);
    int V = cfg.model.vocab_size, ctx = T / 2;
    if (T < 4 || ctx + LC > T || ctx + G > T) return fprintf(stderr, "T must be at least %d\n", 2 * LC), 2;
    KilnModel m;
    if (gpt_create(&m, &cfg.model, 1, T, &err)) return die("model", &err);
    gpt_init_weights(&m, cfg.train.seed);
    KilnRng rng;
    kiln_rng_seed(&rng, 7);
    for (int id = 0; id < PT_COUNT; id++) {  // norms and biases away from 1 and 0
        int norm_or_bias = id == PT_LN1W || id == PT_LN1B || id == PT_LN2W || id == PT_LN2B ||
                           id == PT_LNFW || id == PT_LNFB || id == PT_QKVB || id == PT_ATTPROJB ||
                           id == PT_FCB || id == PT_FCPROJB;
        if (!norm_or_bias || !m.p.t[id]) continue;
        for (long k = 0; k < m.layout.size[id]; k++) m.p.t[id][k] += 0.1f * kiln_rng_normal(&rng);
    }
    int32_t *tok = malloc(sizeof(int32_t) * T);
    float *ftok = malloc(sizeof(float) * T), *logits = malloc(sizeof(float) * T * V);
    float *lp_whole = malloc(sizeof(float) * T), *lp_steps = malloc(sizeof(float) * T);
    static float choices[NC * LC], lp_choices[NC], greedy[G];
    for (int i = 0; i < T; i++) ftok[i] = (float)(tok[i] = (int32_t)(kiln_rng_u64(&rng) % V));

    KilnInfer *s;
    if (infer_create(&s, &m, T, &err)) return die("infer", &err);
    if (infer_append(s, tok, T, logits, &err)) return die("infer", &err);
    for (int t = 1; t < T; t++) lp_whole[t - 1] = (float)logprob_at(logits + (long)(t - 1) * V, V, tok[t]);
    infer_truncate(s, 0);
    for (int t = 0; t < T; t++) {
        if (infer_append(s, tok + t, 1, logits, &err)) return die("infer", &err);
        if (t + 1 < T) lp_steps[t] = (float)logprob_at(logits, V, tok[t + 1]);
    }
    // choices of lengths LC, LC-2, 1 after the context; the context's last logits
    // predict each choice's first token
    float *ctx_logits = malloc(sizeof(float) * V);
    infer_truncate(s, 0);
    if (infer_append(s, tok, ctx, logits, &err)) return die("infer", &err);
    memcpy(ctx_logits, logits + (long)(ctx - 1) * V, sizeof(float) * V);
    int lens[NC] = {LC, LC - 2, 1};
    for (int c = 0; c < NC; c++) {
        int32_t ch[LC];
        for (int i = 0; i < LC; i++) {
            ch[i] = (int32_t)(kiln_rng_u64(&rng) % V);
            choices[c * LC + i] = i < lens[c] ? (float)ch[i] : -1.0f;
        }
        infer_truncate(s, ctx);
        if (infer_append(s, ch, lens[c], logits, &err)) return die("infer", &err);
        double sum = logprob_at(ctx_logits, V, ch[0]);
        for (int i = 1; i < lens[c]; i++) sum += logprob_at(logits + (long)(i - 1) * V, V, ch[i]);
        lp_choices[c] = (float)sum;
    }
    // greedy continuation of the context
    infer_truncate(s, ctx);
    memcpy(logits, ctx_logits, sizeof(float) * V);
    for (int g = 0; g < G; g++) {
        int32_t next = sample_token(logits, V, 0.0f, 0, 1.0f, 0.0f);
        greedy[g] = (float)next;
        if (infer_append(s, &next, 1, logits, &err)) return die("infer", &err);
    }
    infer_free(s);

    int n = gpt_named_tensors(&m, m.params, NULL);
    KilnNamedTensor *nt = calloc((size_t)n, sizeof *nt);
    gpt_named_tensors(&m, m.params, nt);
    KilnStTensor *ts = calloc((size_t)n + 7, sizeof *ts);
    char (*names)[128] = calloc((size_t)n, sizeof *names);
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "init.%s", nt[i].name);
        ts[i] = (KilnStTensor){names[i], nt[i].data, nt[i].ndim, {nt[i].shape[0], nt[i].shape[1]}};
    }
    ts[n] = (KilnStTensor){"tokens", ftok, 1, {T}};
    ts[n + 1] = (KilnStTensor){"lp_whole", lp_whole, 1, {T - 1}};
    ts[n + 2] = (KilnStTensor){"lp_steps", lp_steps, 1, {T - 1}};
    ts[n + 3] = (KilnStTensor){"choices", choices, 2, {NC, LC}};
    ts[n + 4] = (KilnStTensor){"lp_choices", lp_choices, 1, {NC}};
    ts[n + 5] = (KilnStTensor){"greedy", greedy, 1, {G}};
    ts[n + 6] = (KilnStTensor){"ctx", NULL, 1, {1}};
    float fctx = (float)ctx;
    ts[n + 6].data = &fctx;
    char *js = model_json(&cfg.model);
    const char *keys[] = {"kiln.json"}, *vals[] = {js};
    if (st_write(argv[1], ts, n + 7, keys, vals, 1, &err)) return die("write", &err);
    printf("wrote %s: %d tensors\n", argv[1], n + 7);
    free(js);
    free(names);
    free(ts);
    free(nt);
    free(ctx_logits);
    free(tok), free(ftok), free(logits), free(lp_whole), free(lp_steps);
    gpt_destroy(&m);
    return 0;
}
