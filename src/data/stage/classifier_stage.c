// classifier_stage.c: the `classifier` stage: keeps or drops documents by a
// trained classifier's probability of one label (classifier.h). Modes: a
// threshold, or GPT-3's Pareto sampling (keep when np.random.pareto(alpha) >
// 1 - score, so low scores still pass now and then); `invert` turns it into a
// toxicity filter (drop documents likely to have the label).
#include "kiln/classifier.h"
#include "kiln/data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

enum { MODE_THRESHOLD, MODE_PARETO };

typedef struct {
    KilnClassifier *model;
    int label, mode, invert;
    double threshold, alpha;
    uint64_t seed;
} ClsStage;

static void cls_destroy(void *state) {
    ClsStage *s = state;
    if (!s) return;
    classifier_free(s->model);
    free(s);
}

// The label a score is about: the one named, else "hq" if the model has it, else
// the model's first label.
static int pick_label(const KilnClassifier *m, const char *name, KilnErr *err) {
    if (!name) {
        int hq = classifier_find_label(m, "hq");
        return hq >= 0 ? hq : 0;
    }
    int i = classifier_find_label(m, name);
    if (i >= 0) return i;
    char names[512] = "";
    for (int k = 0; k < classifier_nlabels(m) && strlen(names) < 400; k++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", k ? ", " : "", classifier_label(m, k));
    return kiln_fail(err, "classifier: label '%s' is not in the model (labels: %s)", name, names);
}

static int cls_create(KilnParams *ps, uint64_t seed, void **state, KilnErr *err) {
    static const char *const modes[] = {"threshold", "pareto", NULL};
    const char *path = NULL, *label = NULL;
    ClsStage *s = calloc(1, sizeof *s);
    if (!s) return kiln_fail(err, "out of memory");
    s->seed = seed;
    s->threshold = 0.5;
    s->alpha = 9;
    if (params_str(ps, "model", &path, err) || params_str(ps, "label", &label, err) ||
        params_enum(ps, "mode", modes, &s->mode, err) || params_double(ps, "threshold", &s->threshold, err) ||
        params_double(ps, "pareto_alpha", &s->alpha, err) || params_bool(ps, "invert", &s->invert, err))
        goto fail;
    if (!path) {
        kiln_fail(err, "classifier: the 'model' parameter (a .kcls file from `kiln data classifier train`) is required");
        goto fail;
    }
    if (!(s->threshold >= 0 && s->threshold <= 1)) {
        kiln_fail(err, "classifier: threshold must be in [0, 1], got %g", s->threshold);
        goto fail;
    }
    if (!(s->alpha > 0 && isfinite(s->alpha))) {
        kiln_fail(err, "classifier: pareto_alpha must be > 0, got %g", s->alpha);
        goto fail;
    }
    if (classifier_load(&s->model, path, err)) goto fail;
    s->label = pick_label(s->model, label, err);
    if (s->label < 0) goto fail;
    *state = s;
    return 0;
fail:
    cls_destroy(s);
    return -1;
}

// A uniform draw in [0, 1) fixed by (seed, source, id).
static double doc_uniform(uint64_t seed, const KilnDoc *d) {
    uint64_t h = XXH3_64bits_withSeed(d->id.data, d->id.len,
                                      kiln_hash64(seed ^ 0x5041524554ull) ^ XXH3_64bits(d->source.data, d->source.len));
    return (double)(h >> 11) * 0x1.0p-53;
}

// numpy's pareto(a): a Lomax draw, (1 - u)^(-1/a) - 1.
static double pareto_draw(double u, double alpha) { return pow(1.0 - u, -1.0 / alpha) - 1.0; }

static const char *cls_apply(void *state, KilnDoc *doc, KilnScratch *scratch) {
    const ClsStage *s = state;
    float probs[KILN_CLS_MAX_LABELS];
    classifier_predict(s->model, doc->text.data ? doc->text.data : "", doc->text.len, probs);
    double p = probs[s->label];
    if (s->mode == MODE_THRESHOLD) {
        if (s->invert) return p >= s->threshold ? "classifier:toxic" : NULL;
        return p >= s->threshold ? NULL : "classifier:below_threshold";
    }
    double score = s->invert ? 1.0 - p : p;
    return pareto_draw(doc_uniform(s->seed, doc), s->alpha) > 1.0 - score ? NULL : "classifier:pareto";
}

const KilnStageDef STAGE_CLASSIFIER = {
    .name = "classifier",
    .summary = "keep documents a trained fastText-style classifier scores high (quality), or drop them (toxicity)",
    .params_help = "  model (required): a .kcls file from `kiln data classifier train`\n"
                   "  label (hq if the model has it, else its first label): the label scored\n"
                   "  mode (threshold): threshold = keep when p(label) >= threshold;\n"
                   "    pareto = GPT-3: keep when a Pareto(pareto_alpha) draw > 1 - p(label)\n"
                   "  threshold (0.5): see mode\n"
                   "  pareto_alpha (9): GPT-3's shape parameter\n"
                   "  invert (false): drop when p(label) >= threshold (toxicity); in pareto mode score 1 - p\n",
    .create = cls_create,
    .destroy = cls_destroy,
    .apply = cls_apply,
};
