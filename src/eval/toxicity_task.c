// toxicity_task.c: tasks/toxicity.yaml, the task-file form of the toxicity
// evaluation (toxicity.h), so `kiln eval --tasks toxicity` needs no options.
#include "kiln/toxicity.h"

#include "core/parse.h"
#include "core/yaml.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static int fail_at(const char *path, const KyNode *n, KilnErr *err, const char *key, const char *what) {
    return kiln_fail(err, "%s:%d: %s%s%s", path, n->line, key ? key : "", key ? ": " : "", what);
}

static int get_long(const char *path, const KyNode *v, const char *key, long lo, long hi, long *out, KilnErr *err) {
    const char *s = ky_str(v);
    if (!s || kiln_parse_long(s, lo, hi, out)) {
        char msg[128];
        snprintf(msg, sizeof msg, "expected an integer in [%ld, %ld]", lo, hi);
        return fail_at(path, v, err, key, msg);
    }
    return 0;
}

static int get_float(const char *path, const KyNode *v, const char *key, double lo, double hi, int lo_open,
                     float *out, KilnErr *err) {
    const char *s = ky_str(v);
    double x;
    if (!s || kiln_parse_double(s, &x) || !(lo_open ? x > lo : x >= lo) || !(x <= hi)) {
        char msg[128];
        snprintf(msg, sizeof msg, "expected a number in %s%g, %g]", lo_open ? "(" : "[", lo, hi);
        return fail_at(path, v, err, key, msg);
    }
    *out = (float)x;
    return 0;
}

// A path under data_dir (absolute paths stay as they are).
static int get_path(const char *path, const KyNode *v, const char *key, const char *data_dir, char *out,
                    KilnErr *err) {
    const char *s = ky_str(v);
    if (!s || !*s) return fail_at(path, v, err, key, "expected a path");
    int n = s[0] == '/' || !data_dir || !*data_dir ? snprintf(out, KILN_TOX_PATH, "%s", s)
                                                   : snprintf(out, KILN_TOX_PATH, "%s/%s", data_dir, s);
    if (n < 0 || n >= KILN_TOX_PATH) return fail_at(path, v, err, key, "the path is too long");
    return 0;
}

// classifier_neutral: one path or a list of them ([] for none).
static int get_paths(const char *path, const KyNode *v, const char *key, const char *data_dir, KilnToxOptions *o,
                     KilnErr *err) {
    o->n_neutral = 0;
    if (v->type != KY_SEQ) {
        o->n_neutral = 1;
        return get_path(path, v, key, data_dir, o->classifier_neutral[0], err);
    }
    for (int i = 0; i < v->nkids; i++) {
        const KyNode *e = v->kids[i];
        if (o->n_neutral == KILN_TOX_MAX_NEUTRAL) {
            char msg[64];
            snprintf(msg, sizeof msg, "at most %d files", KILN_TOX_MAX_NEUTRAL);
            return fail_at(path, e, err, key, msg);
        }
        if (get_path(path, e, key, data_dir, o->classifier_neutral[o->n_neutral++], err)) return -1;
    }
    return 0;
}

static const char KEYS[] = "task, kind, description, prompts, prompts_format, n_prompts, k, max_tokens, temperature, "
                           "top_p, top_k, seed, wordlist, classifier, classifier_train, classifier_neutral";

// One key: value of the mapping into o.
static int set_key(const char *path, const KyNode *kn, const KyNode *v, const char *data_dir,
                   KilnToxOptions *o, int *format, KilnErr *err) {
    const char *key = ky_str(kn), *val = ky_str(v);
    long x;
    int rc = 0;
    if (!key) return fail_at(path, kn, err, NULL, "keys must be plain strings");
    if (!strcmp(key, "task")) {
        if (!val || !*val || strlen(val) >= sizeof o->task) return fail_at(path, v, err, key, "expected a short name");
        snprintf(o->task, sizeof o->task, "%s", val);
    } else if (!strcmp(key, "kind")) {
        if (!val || strcmp(val, "toxicity")) return fail_at(path, v, err, key, "expected toxicity");
    } else if (!strcmp(key, "description")) {
        if (!val) return fail_at(path, v, err, key, "expected text");
    } else if (!strcmp(key, "prompts")) rc = get_path(path, v, key, data_dir, o->prompts, err);
    else if (!strcmp(key, "prompts_format")) {
        if (val && !strcmp(val, "davidson")) *format = 0;
        else if (val && !strcmp(val, "jsonl")) *format = 1;
        else return fail_at(path, v, err, key, "expected davidson or jsonl");
    } else if (!strcmp(key, "n_prompts")) rc = get_long(path, v, key, 0, 100000000, &o->n_prompts, err);
    else if (!strcmp(key, "k")) rc = get_long(path, v, key, 1, 100000, &x, err), o->k = (int)x;
    else if (!strcmp(key, "max_tokens")) rc = get_long(path, v, key, 1, 1000000, &x, err), o->max_tokens = (int)x;
    else if (!strcmp(key, "top_k")) rc = get_long(path, v, key, 0, INT_MAX, &x, err), o->top_k = (int)x;
    else if (!strcmp(key, "seed")) rc = get_long(path, v, key, 0, LONG_MAX, &x, err), o->seed = (uint64_t)x;
    else if (!strcmp(key, "temperature")) rc = get_float(path, v, key, 0, 100, 0, &o->temperature, err);
    else if (!strcmp(key, "top_p")) rc = get_float(path, v, key, 0, 1, 1, &o->top_p, err);
    else if (!strcmp(key, "wordlist")) rc = get_path(path, v, key, data_dir, o->wordlist, err);
    else if (!strcmp(key, "classifier")) rc = get_path(path, v, key, data_dir, o->classifier, err);
    else if (!strcmp(key, "classifier_train")) rc = get_path(path, v, key, data_dir, o->classifier_train, err);
    else if (!strcmp(key, "classifier_neutral")) rc = get_paths(path, v, key, data_dir, o, err);
    else {
        char msg[400];
        snprintf(msg, sizeof msg, "unknown key (%s)", KEYS);
        return fail_at(path, kn, err, key, msg);
    }
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

// The keys of root (the file's mapping) into o.
static int load_root(const char *path, const KyNode *root, const char *data_dir, KilnToxOptions *o, KilnErr *err) {
    int rc = 0, format = -1, kind = 0;
    if (!root) return kiln_fail(err, "%s: empty; expected a mapping with kind: toxicity", path);
    if (root->type != KY_MAP) return fail_at(path, root, err, NULL, "expected a mapping with kind: toxicity");
    for (int i = 0; !rc && i + 1 < root->nkids; i += 2) {
        const KyNode *k = root->kids[i], *v = root->kids[i + 1];
        if (ky_key_repeated(root, i)) rc = fail_at(path, k, err, k->str, "key given twice");
        if (!rc) rc = set_key(path, k, v, data_dir, o, &format, err);
        if (!rc && !strcmp(k->str, "kind")) kind = 1;
    }
    if (!rc && !kind) rc = kiln_fail(err, "%s:%d: kind: toxicity is missing", path, root->line);
    o->prompts_jsonl = format < 0 ? ends_with(o->prompts, ".jsonl") : format;
    if (!rc && !o->prompts_jsonl && o->n_prompts < 1)
        rc = kiln_fail(err, "%s: n_prompts must be at least 1 for the Davidson prompt set", path);
    return rc;
}

int toxicity_task_load(const char *yaml_path, const char *data_dir, KilnToxOptions *o, KilnErr *err) {
    toxicity_options_default(o, data_dir);
    KilnYaml y;
    if (ky_load(&y, yaml_path, KY_FIRST_DOC, err)) return -1;
    int rc = load_root(yaml_path, ky_root(&y), data_dir, o, err);
    ky_free(&y);
    return rc;
}

int toxicity_task_is(const char *yaml_path) {
    KilnYaml y;
    KilnErr err;
    if (ky_load(&y, yaml_path, KY_FIRST_DOC, &err)) return 0;
    const KyNode *root = ky_root(&y);
    int yes = 0;
    for (int i = 0; root && root->type == KY_MAP && i + 1 < root->nkids; i += 2) {
        const char *k = ky_str(root->kids[i]), *v = ky_str(root->kids[i + 1]);
        if (k && v && !strcmp(k, "kind") && !strcmp(v, "toxicity")) yes = 1;
    }
    ky_free(&y);
    return yes;
}
