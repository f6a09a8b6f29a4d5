// toxicity_task.c: tasks/toxicity.yaml, the task-file form of the toxicity
// evaluation (toxicity.h), so `kiln eval --tasks toxicity` needs no options.
#include "kiln/toxicity.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct {
    const char *path;
    yaml_document_t doc;
} Yaml;

static yaml_node_t *node(const Yaml *y, int id) { return yaml_document_get_node((yaml_document_t *)&y->doc, id); }

static const char *scalar(const yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int fail_at(const Yaml *y, const yaml_node_t *n, KilnErr *err, const char *key, const char *what) {
    return kiln_fail(err, "%s:%zu: %s%s%s", y->path, n->start_mark.line + 1, key ? key : "", key ? ": " : "", what);
}

// Parses path into y->doc; errors name the line of a syntax error.
static int yaml_open(Yaml *y, const char *path, KilnErr *err) {
    char *text;
    size_t len;
    y->path = path;
    if (kiln_read_file(path, &text, &len, err)) return -1;
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc = 0;
    if (!yaml_parser_load(&parser, &y->doc))
        rc = kiln_fail(err, "%s:%zu: %s", path, parser.problem_mark.line + 1,
                       parser.problem ? parser.problem : "YAML syntax error");
    yaml_parser_delete(&parser);
    free(text);
    return rc;
}

static int get_long(const Yaml *y, const yaml_node_t *v, const char *key, long lo, long hi, long *out, KilnErr *err) {
    const char *s = scalar(v);
    char *end, msg[128];
    errno = 0;
    long x = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || x < lo || x > hi) {
        snprintf(msg, sizeof msg, "expected an integer in [%ld, %ld]", lo, hi);
        return fail_at(y, v, err, key, msg);
    }
    *out = x;
    return 0;
}

static int get_float(const Yaml *y, const yaml_node_t *v, const char *key, double lo, double hi, int lo_open,
                     float *out, KilnErr *err) {
    const char *s = scalar(v);
    char *end, msg[128];
    double x = s ? strtod(s, &end) : NAN;
    if (!s || !*s || *end || !(lo_open ? x > lo : x >= lo) || !(x <= hi)) {
        snprintf(msg, sizeof msg, "expected a number in %s%g, %g]", lo_open ? "(" : "[", lo, hi);
        return fail_at(y, v, err, key, msg);
    }
    *out = (float)x;
    return 0;
}

// A path under data_dir (absolute paths stay as they are).
static int get_path(const Yaml *y, const yaml_node_t *v, const char *key, const char *data_dir, char *out,
                    KilnErr *err) {
    const char *s = scalar(v);
    if (!s || !*s) return fail_at(y, v, err, key, "expected a path");
    int n = s[0] == '/' || !data_dir || !*data_dir ? snprintf(out, KILN_TOX_PATH, "%s", s)
                                                   : snprintf(out, KILN_TOX_PATH, "%s/%s", data_dir, s);
    if (n < 0 || n >= KILN_TOX_PATH) return fail_at(y, v, err, key, "the path is too long");
    return 0;
}

// classifier_neutral: one path or a list of them ([] for none).
static int get_paths(const Yaml *y, const yaml_node_t *v, const char *key, const char *data_dir, KilnToxOptions *o,
                     KilnErr *err) {
    o->n_neutral = 0;
    if (v->type != YAML_SEQUENCE_NODE) {
        o->n_neutral = 1;
        return get_path(y, v, key, data_dir, o->classifier_neutral[0], err);
    }
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
        const yaml_node_t *e = node(y, *it);
        if (o->n_neutral == KILN_TOX_MAX_NEUTRAL) {
            char msg[64];
            snprintf(msg, sizeof msg, "at most %d files", KILN_TOX_MAX_NEUTRAL);
            return fail_at(y, e, err, key, msg);
        }
        if (get_path(y, e, key, data_dir, o->classifier_neutral[o->n_neutral++], err)) return -1;
    }
    return 0;
}

static const char KEYS[] = "task, kind, description, prompts, prompts_format, n_prompts, k, max_tokens, temperature, "
                           "top_p, top_k, seed, wordlist, classifier, classifier_train, classifier_neutral";

// One key: value of the mapping into o.
static int set_key(const Yaml *y, const yaml_node_t *kn, const yaml_node_t *v, const char *data_dir,
                   KilnToxOptions *o, int *format, KilnErr *err) {
    const char *key = scalar(kn), *val = scalar(v);
    long x;
    int rc = 0;
    if (!key) return fail_at(y, kn, err, NULL, "keys must be plain strings");
    if (!strcmp(key, "task")) {
        if (!val || !*val || strlen(val) >= sizeof o->task) return fail_at(y, v, err, key, "expected a short name");
        snprintf(o->task, sizeof o->task, "%s", val);
    } else if (!strcmp(key, "kind")) {
        if (!val || strcmp(val, "toxicity")) return fail_at(y, v, err, key, "expected toxicity");
    } else if (!strcmp(key, "description")) {
        if (!val) return fail_at(y, v, err, key, "expected text");
    } else if (!strcmp(key, "prompts")) rc = get_path(y, v, key, data_dir, o->prompts, err);
    else if (!strcmp(key, "prompts_format")) {
        if (val && !strcmp(val, "davidson")) *format = 0;
        else if (val && !strcmp(val, "jsonl")) *format = 1;
        else return fail_at(y, v, err, key, "expected davidson or jsonl");
    } else if (!strcmp(key, "n_prompts")) rc = get_long(y, v, key, 0, 100000000, &o->n_prompts, err);
    else if (!strcmp(key, "k")) rc = get_long(y, v, key, 1, 100000, &x, err), o->k = (int)x;
    else if (!strcmp(key, "max_tokens")) rc = get_long(y, v, key, 1, 1000000, &x, err), o->max_tokens = (int)x;
    else if (!strcmp(key, "top_k")) rc = get_long(y, v, key, 0, INT_MAX, &x, err), o->top_k = (int)x;
    else if (!strcmp(key, "seed")) rc = get_long(y, v, key, 0, LONG_MAX, &x, err), o->seed = (uint64_t)x;
    else if (!strcmp(key, "temperature")) rc = get_float(y, v, key, 0, 100, 0, &o->temperature, err);
    else if (!strcmp(key, "top_p")) rc = get_float(y, v, key, 0, 1, 1, &o->top_p, err);
    else if (!strcmp(key, "wordlist")) rc = get_path(y, v, key, data_dir, o->wordlist, err);
    else if (!strcmp(key, "classifier")) rc = get_path(y, v, key, data_dir, o->classifier, err);
    else if (!strcmp(key, "classifier_train")) rc = get_path(y, v, key, data_dir, o->classifier_train, err);
    else if (!strcmp(key, "classifier_neutral")) rc = get_paths(y, v, key, data_dir, o, err);
    else {
        char msg[400];
        snprintf(msg, sizeof msg, "unknown key (%s)", KEYS);
        return fail_at(y, kn, err, key, msg);
    }
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

int toxicity_task_load(const char *yaml_path, const char *data_dir, KilnToxOptions *o, KilnErr *err) {
    toxicity_options_default(o, data_dir);
    Yaml y;
    if (yaml_open(&y, yaml_path, err)) return -1;
    int rc = 0, format = -1, kind = 0;
    yaml_node_t *root = yaml_document_get_root_node(&y.doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        rc = root ? fail_at(&y, root, err, NULL, "expected a mapping with kind: toxicity")
                  : kiln_fail(err, "%s: empty; expected a mapping with kind: toxicity", yaml_path);
        goto done;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; !rc && p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(&y, p->key), *v = node(&y, p->value);
        for (yaml_node_pair_t *q = root->data.mapping.pairs.start; !rc && q < p; q++) {
            const char *a = scalar(node(&y, q->key)), *b = scalar(k);
            if (a && b && !strcmp(a, b)) rc = fail_at(&y, k, err, b, "key given twice");
        }
        if (!rc) rc = set_key(&y, k, v, data_dir, o, &format, err);
        if (!rc && !strcmp(scalar(k), "kind")) kind = 1;
    }
    if (!rc && !kind) rc = kiln_fail(err, "%s:%zu: kind: toxicity is missing", yaml_path, root->start_mark.line + 1);
    o->prompts_jsonl = format < 0 ? ends_with(o->prompts, ".jsonl") : format;
    if (!rc && !o->prompts_jsonl && o->n_prompts < 1)
        rc = kiln_fail(err, "%s: n_prompts must be at least 1 for the Davidson prompt set", yaml_path);
done:
    yaml_document_delete(&y.doc);
    return rc;
}

int toxicity_task_is(const char *yaml_path) {
    Yaml y;
    KilnErr err;
    if (yaml_open(&y, yaml_path, &err)) return 0;
    int yes = 0;
    yaml_node_t *root = yaml_document_get_root_node(&y.doc);
    if (root && root->type == YAML_MAPPING_NODE)
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
            const char *k = scalar(node(&y, p->key)), *v = scalar(node(&y, p->value));
            if (k && v && !strcmp(k, "kind") && !strcmp(v, "toxicity")) yes = 1;
        }
    yaml_document_delete(&y.doc);
    return yes;
}
