// task_spec.c: the schema of task files (docs/eval.md, "Task files"): reads
// the YAML tree into a KilnTask's settings, refusing unknown keys, keys that
// do not apply to the task's kind, missing fields, bad templates and bad
// regexes, each with file:line.
#include "task/task_internal.h"

#include "core/parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Which kinds a top-level key applies to (bit per KilnTaskKind), and which need it.
#define K_MC (1u << TASK_MULTIPLE_CHOICE)
#define K_LL (1u << TASK_LOGLIKELIHOOD)
#define K_GEN (1u << TASK_GENERATE)
#define K_ROLL (1u << TASK_ROLLING)
#define K_PAIRS (1u << TASK_PAIRS)
#define K_ALL (K_MC | K_LL | K_GEN | K_ROLL | K_PAIRS)

typedef struct {
    const char *key;
    unsigned kinds, required;
} KeyRule;

static const KeyRule TOP[] = {
    {"name", K_ALL, K_ALL},
    {"kind", K_ALL, K_ALL},
    {"data", K_ALL, K_ALL},
    {"fewshot", K_MC | K_LL | K_GEN, 0},
    {"text", K_MC | K_LL | K_GEN, K_MC | K_LL | K_GEN},
    {"choices", K_MC | K_PAIRS, K_MC | K_PAIRS},
    {"label", K_MC, K_MC},
    {"target", K_LL | K_GEN | K_ROLL, K_LL | K_GEN | K_ROLL},
    {"group", K_PAIRS, 0},
    {"count_text", K_ROLL, 0},
    {"target_delimiter", K_MC | K_LL | K_GEN, 0},
    {"fewshot_delimiter", K_MC | K_LL | K_GEN, 0},
    {"generate", K_GEN, 0},
    {"filters", K_GEN, 0},
    {"exact_match", K_GEN, 0},
    {"decontaminate", K_ALL, 0},
};
#define NTOP (sizeof TOP / sizeof TOP[0])

static const char *const KINDS[] = {"multiple_choice", "loglikelihood", "generate", "rolling", "pairs"};

typedef struct {
    const char *file;
    KilnErr *err;
} Sp;

static int fail_at(Sp *sp, long line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_at(Sp *sp, long line, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kiln_fail(sp->err, "%s:%ld: %s", sp->file, line, msg);
}

// Every key of map among names[0..n) and none twice; where names the mapping in messages.
static int check_keys(Sp *sp, const KyNode *map, const char *where, const char *const *names, int n) {
    for (int i = 0; i + 1 < map->nkids; i += 2) {
        const KyNode *k = map->kids[i];
        int known = 0;
        for (int j = 0; j < n && !known; j++) known = !strcmp(k->str, names[j]);
        if (!known) {
            char list[400] = "";
            for (int j = 0; j < n; j++) {
                strncat(list, j ? ", " : "", sizeof list - strlen(list) - 1);
                strncat(list, names[j], sizeof list - strlen(list) - 1);
            }
            return fail_at(sp, k->line, "unknown key '%.80s'%s%s (known: %s)", k->str, where ? " in " : "",
                           where ? where : "", list);
        }
        if (ky_key_repeated(map, i)) return fail_at(sp, k->line, "key '%.80s' given twice", k->str);
    }
    return 0;
}

static const KyNode *need(Sp *sp, const KyNode *map, const char *key, const char *where) {
    const KyNode *v = ky_get(map, key);
    if (!v) fail_at(sp, map->line, "%s%smissing '%s'", where ? where : "", where ? ": " : "", key);
    return v;
}

static int want_map(Sp *sp, const KyNode *n, const char *key) {
    return n->type == KY_MAP ? 0 : fail_at(sp, n->line, "'%s' must be a mapping of keys", key);
}

static int get_str(Sp *sp, const KyNode *n, const char *key, char **out) {
    if (n->type != KY_SCALAR) return fail_at(sp, n->line, "'%s' must be a text value", key);
    free(*out);
    if (!(*out = strdup(n->str))) return kiln_fail(sp->err, "out of memory");
    return 0;
}

// Integers and booleans are written plain: a quoted "3" or "true" is a text.
static int get_int(Sp *sp, const KyNode *n, const char *key, long lo, long hi, long *out) {
    if (n->type != KY_SCALAR || ky_quoted(n) || kiln_parse_long(n->str, lo, hi, out))
        return fail_at(sp, n->line, "'%s' must be an integer from %ld to %ld", key, lo, hi);
    return 0;
}

static int get_bool(Sp *sp, const KyNode *n, const char *key, int *out) {
    if (n->type != KY_SCALAR || ky_quoted(n) || kiln_parse_bool(n->str, out))
        return fail_at(sp, n->line, "'%s' must be true or false", key);
    return 0;
}

// A list of text values (a single text value counts as a list of one).
static int get_str_list(Sp *sp, const KyNode *n, const char *key, char ***out, int *nout) {
    int cnt = n->type == KY_SEQ ? n->nkids : 1;
    if (n->type == KY_MAP) return fail_at(sp, n->line, "'%s' must be a list of text values", key);
    char **v = calloc((size_t)cnt + 1, sizeof *v);
    if (!v) return kiln_fail(sp->err, "out of memory");
    *out = v;
    *nout = 0;
    for (int i = 0; i < cnt; i++) {
        const KyNode *x = n->type == KY_SEQ ? n->kids[i] : n;
        if (x->type != KY_SCALAR) return fail_at(sp, x->line, "'%s' must be a list of text values", key);
        if (!(v[i] = strdup(x->str))) return kiln_fail(sp->err, "out of memory");
        (*nout)++;
    }
    return 0;
}

// A template: "text {field|filter}", or {template: "...", filters: [f, ...]}
// (filters over the whole rendered text).
static int get_template(Sp *sp, const KyNode *n, const char *key, Template **out) {
    const KyNode *src = n;
    if (n->type == KY_MAP) {
        static const char *const K[] = {"template", "filters"};
        if (check_keys(sp, n, key, K, 2) || !(src = need(sp, n, "template", key))) return -1;
    }
    if (src->type != KY_SCALAR)
        return fail_at(sp, src->line, "'%s' must be a template text or {template, filters}", key);
    char why[300];
    if (tpl_parse(src->str, out, why, sizeof why)) return fail_at(sp, src->line, "%s: %s", key, why);
    const KyNode *fl = n->type == KY_MAP ? ky_get(n, "filters") : NULL;
    if (fl) {
        char **names = NULL;
        int nn = 0, rc = get_str_list(sp, fl, "filters", &names, &nn);
        for (int i = 0; i < nn && !rc; i++)
            if (tpl_add_post_filter(*out, names[i], why, sizeof why)) rc = fail_at(sp, fl->line, "%s: %s", key, why);
        for (int i = 0; names && names[i]; i++) free(names[i]);
        free(names);
        if (rc) return -1;
    }
    return 0;
}

static int get_format(Sp *sp, const KyNode *map, const char *path, const char *where, DsFormat *out) {
    static const char *const F[] = {"jsonl", "csv", "lines", "text"};
    const KyNode *f = ky_get(map, "format");
    const char *name = NULL;
    if (f) {
        if (f->type != KY_SCALAR) return fail_at(sp, f->line, "'format' must be jsonl, csv, lines or text");
        name = f->str;
    } else {  // from the file name
        size_t n = strlen(path);
        name = n > 6 && !strcmp(path + n - 6, ".jsonl") ? "jsonl" : n > 4 && !strcmp(path + n - 4, ".csv") ? "csv" : NULL;
        if (!name)
            return fail_at(sp, map->line, "%s: missing 'format' (jsonl, csv, lines or text; only .jsonl and .csv tell)",
                           where);
    }
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, F[i])) return *out = (DsFormat)i, 0;
    return fail_at(sp, f->line, "'format' must be jsonl, csv, lines or text, not '%.60s'", name);
}

// dir/p, tidied (kiln_path_tidy), as messages and item ids show it.
static char *join_path(const char *dir, const char *p) {
    size_t n = (dir ? strlen(dir) : 0) + strlen(p) + 2;
    char *s = malloc(n), *t = malloc(n);
    if (s && t) {
        if (p[0] == '/' || !dir || !dir[0]) snprintf(s, n, "%s", p);
        else snprintf(s, n, "%s/%s", dir, p);
        kiln_path_tidy(s, t, n);
    }
    free(s);
    return t;
}

static int read_data(Sp *sp, KilnTask *t, const KyNode *d, const char *data_dir) {
    static const char *const K[] = {"path", "format", "id", "label_file", "split"};
    const KyNode *p;
    char *rel = NULL;
    if (want_map(sp, d, "data") || check_keys(sp, d, "data", K, 5) || !(p = need(sp, d, "path", "data")) ||
        get_str(sp, p, "path", &rel))
        return -1;
    t->data_path = join_path(data_dir, rel);
    int rc = t->data_path ? get_format(sp, d, rel, "data", &t->data.format) : kiln_fail(sp->err, "out of memory");
    free(rel);
    if (rc) return -1;
    t->data.path = t->data_path;
    const KyNode *v;
    if ((v = ky_get(d, "label_file"))) {
        char *lf = NULL;
        if (get_str(sp, v, "label_file", &lf)) return -1;
        t->label_path = join_path(data_dir, lf);
        free(lf);
        if (!t->label_path) return kiln_fail(sp->err, "out of memory");
        t->data.label_file = t->label_path;
    }
    if ((v = ky_get(d, "split"))) {
        if (t->data.format != DS_TEXT) return fail_at(sp, v->line, "'split' applies to format text only");
        if (v->type != KY_SCALAR || (strcmp(v->str, "none") && strcmp(v->str, "wikitext")))
            return fail_at(sp, v->line, "'split' must be none or wikitext");
        t->data.split = strcmp(v->str, "wikitext") ? DS_SPLIT_NONE : DS_SPLIT_WIKITEXT;
    }
    if ((v = ky_get(d, "id"))) return get_template(sp, v, "id", &t->id);
    char def[300], why[300];  // "<name>/{_index}"
    snprintf(def, sizeof def, "%s/{_index}", t->name);
    if (tpl_parse(def, &t->id, why, sizeof why)) return fail_at(sp, d->line, "the default id '%s': %s", def, why);
    return 0;
}

static int read_fewshot(Sp *sp, KilnTask *t, const KyNode *f, const char *data_dir) {
    static const char *const K[] = {"path", "format", "split_from_data", "default_shots", "max"};
    if (want_map(sp, f, "fewshot") || check_keys(sp, f, "fewshot", K, 5)) return -1;
    const KyNode *p = ky_get(f, "path"), *s = ky_get(f, "split_from_data"), *v;
    long x = 0;
    if (!p == !s) return fail_at(sp, f->line, "fewshot: give exactly one of 'path' and 'split_from_data'");
    if (s) {
        if (ky_get(f, "format")) return fail_at(sp, f->line, "fewshot: 'format' goes with 'path'");
        if (get_int(sp, s, "split_from_data", 1, 100000000, &t->split_from_data)) return -1;
    } else {
        char *rel = NULL;
        if (get_str(sp, p, "path", &rel)) return -1;
        t->fs_path = join_path(data_dir, rel);
        int rc = t->fs_path ? get_format(sp, f, rel, "fewshot", &t->fs.format) : kiln_fail(sp->err, "out of memory");
        free(rel);
        if (rc) return -1;
        t->fs.path = t->fs_path;
        t->fs_same_file = !strcmp(t->fs_path, t->data_path);
        if (t->fs_same_file && t->fs.format != t->data.format)
            return fail_at(sp, p->line, "fewshot: the data file read with another format");
    }
    if ((v = ky_get(f, "default_shots"))) {
        if (get_int(sp, v, "default_shots", 0, 1000, &x)) return -1;
        t->default_shots = (int)x;
    }
    if ((v = ky_get(f, "max"))) {
        if (get_int(sp, v, "max", 0, 1000, &x)) return -1;
        t->max_shots_cfg = (int)x;
    }
    return 0;
}

static int read_choices(Sp *sp, KilnTask *t, const KyNode *c) {
    if (c->type == KY_SCALAR) {  // one list-valued field: "endings|hellaswag"
        char why[300];
        if (tpl_expr_parse(c->str, &t->choice_list, why, sizeof why)) return fail_at(sp, c->line, "choices: %s", why);
        return 0;
    }
    if (c->type != KY_SEQ || c->nkids == 0)
        return fail_at(sp, c->line, "'choices' must be a list field name or a list of templates");
    if (t->kind == TASK_PAIRS && c->nkids != 2) return fail_at(sp, c->line, "'choices' of a pairs task: two templates");
    if (!(t->choice_tpl = calloc((size_t)c->nkids, sizeof *t->choice_tpl))) return kiln_fail(sp->err, "out of memory");
    for (int i = 0; i < c->nkids; i++) {
        if (get_template(sp, c->kids[i], "choices", &t->choice_tpl[i])) return -1;
        t->nchoice_tpl++;
    }
    return 0;
}

// decontaminate: {text: template or list of templates, choices: each | gold}
static int read_decontaminate(Sp *sp, KilnTask *t, const KyNode *d) {
    static const char *const K[] = {"text", "choices"};
    const KyNode *x, *c;
    if (want_map(sp, d, "decontaminate") || check_keys(sp, d, "decontaminate", K, 2) ||
        !(x = need(sp, d, "text", "decontaminate")))
        return -1;
    int cnt = x->type == KY_SEQ ? x->nkids : 1;
    if (x->type == KY_SEQ && cnt == 0) return fail_at(sp, x->line, "decontaminate: 'text' is an empty list");
    if (!(t->dc_text = calloc((size_t)cnt, sizeof *t->dc_text))) return kiln_fail(sp->err, "out of memory");
    for (int i = 0; i < cnt; i++) {
        if (get_template(sp, x->type == KY_SEQ ? x->kids[i] : x, "decontaminate.text", &t->dc_text[i])) return -1;
        t->ndc_text++;
    }
    if (!(c = ky_get(d, "choices"))) return 0;
    if (t->kind != TASK_MULTIPLE_CHOICE && t->kind != TASK_PAIRS)
        return fail_at(sp, c->line, "decontaminate: 'choices' applies to tasks with choices (multiple_choice, pairs)");
    int each = c->type == KY_SCALAR && !strcmp(c->str, "each");
    if (!each && !(c->type == KY_SCALAR && !strcmp(c->str, "gold") && t->kind == TASK_MULTIPLE_CHOICE))
        return fail_at(sp, c->line, "decontaminate: 'choices' must be each or gold (multiple_choice)");
    t->dc_choices = each ? DC_EACH : DC_GOLD;
    return 0;
}

static int read_generate(Sp *sp, KilnTask *t, const KyNode *g) {
    static const char *const K[] = {"until", "max_tokens"};
    if (want_map(sp, g, "generate") || check_keys(sp, g, "generate", K, 2)) return -1;
    const KyNode *v;
    long x = 0;
    if ((v = ky_get(g, "until")) && get_str_list(sp, v, "until", &t->until, &t->nuntil)) return -1;
    for (int i = 0; i < t->nuntil; i++)
        if (!t->until[i][0]) return fail_at(sp, v->line, "'until': an empty stop string");
    if ((v = ky_get(g, "max_tokens"))) {
        if (get_int(sp, v, "max_tokens", 1, 1000000, &x)) return -1;
        t->max_tokens = (int)x;
    }
    return 0;
}

static int compile(Sp *sp, const KyNode *n, const char *key, AnsRegex **out) {
    char why[300];
    if (n->type != KY_SCALAR) return fail_at(sp, n->line, "'%s' must be a regex text", key);
    if (!(*out = ans_regex_new(n->str, why, sizeof why))) return fail_at(sp, n->line, "%s: %s", key, why);
    return 0;
}

static int read_filters(Sp *sp, KilnTask *t, const KyNode *fl) {
    static const char *const K[] = {"name", "regex", "group_select", "fallback"};
    if (fl->type != KY_SEQ || fl->nkids == 0) return fail_at(sp, fl->line, "'filters' must be a list of filters");
    if (!(t->filters = calloc((size_t)fl->nkids, sizeof *t->filters))) return kiln_fail(sp->err, "out of memory");
    for (int i = 0; i < fl->nkids; i++) {
        const KyNode *f = fl->kids[i], *n, *v;
        TaskFilter *tf = &t->filters[t->nfilters++];
        long x = 0;
        if (want_map(sp, f, "filters") || check_keys(sp, f, "a filter", K, 4) || !(n = need(sp, f, "name", "filter")) ||
            get_str(sp, n, "name", &tf->name) || !(v = need(sp, f, "regex", "filter")) || compile(sp, v, "regex", &tf->re))
            return -1;
        for (int j = 0; j < i; j++)
            if (!strcmp(t->filters[j].name, tf->name)) return fail_at(sp, n->line, "filter '%s' twice", tf->name);
        if ((v = ky_get(f, "group_select"))) {
            if (get_int(sp, v, "group_select", -1000, 1000, &x)) return -1;
            tf->group_select = (int)x;
        }
        if ((v = ky_get(f, "fallback")) ? get_str(sp, v, "fallback", &tf->fallback)
                                           : !(tf->fallback = strdup("[invalid]")))
            return v ? -1 : kiln_fail(sp->err, "out of memory");
    }
    return 0;
}

static int read_exact(Sp *sp, KilnTask *t, const KyNode *e) {
    static const char *const K[] = {"ignore_case", "ignore_punctuation", "regexes_to_ignore"};
    if (want_map(sp, e, "exact_match") || check_keys(sp, e, "exact_match", K, 3)) return -1;
    const KyNode *v;
    if ((v = ky_get(e, "ignore_case")) && get_bool(sp, v, "ignore_case", &t->exact.ignore_case)) return -1;
    if ((v = ky_get(e, "ignore_punctuation")) && get_bool(sp, v, "ignore_punctuation", &t->exact.ignore_punctuation))
        return -1;
    if ((v = ky_get(e, "regexes_to_ignore"))) {
        int cnt = v->type == KY_SEQ ? v->nkids : 1;
        if (v->type == KY_MAP) return fail_at(sp, v->line, "'regexes_to_ignore' must be a list of regexes");
        if (!(t->exact.ignore = calloc((size_t)cnt, sizeof *t->exact.ignore))) return kiln_fail(sp->err, "out of memory");
        for (int i = 0; i < cnt; i++) {
            if (compile(sp, v->type == KY_SEQ ? v->kids[i] : v, "regexes_to_ignore", &t->exact.ignore[i])) return -1;
            t->exact.nignore++;
        }
    }
    return 0;
}

int task_spec_read(KilnTask *t, const KyNode *root, const char *data_dir, KilnErr *err) {
    Sp sp = {.file = t->file, .err = err};
    if (root->type != KY_MAP) return fail_at(&sp, root->line, "a task file is a mapping of keys");
    const char *names[NTOP];
    for (size_t i = 0; i < NTOP; i++) names[i] = TOP[i].key;
    if (check_keys(&sp, root, NULL, names, (int)NTOP)) return -1;
    const KyNode *n = need(&sp, root, "name", NULL), *k = n ? need(&sp, root, "kind", NULL) : NULL, *v;
    if (!k || get_str(&sp, n, "name", &t->name)) return -1;
    if (!t->name[0] || strchr(t->name, '/') || strchr(t->name, ' '))
        return fail_at(&sp, n->line, "'name' must be non-empty, without '/' or spaces");
    int kind = -1;
    for (int i = 0; i < 5 && k->type == KY_SCALAR; i++)
        if (!strcmp(k->str, KINDS[i])) kind = i;
    if (kind < 0) return fail_at(&sp, k->line, "'kind' must be multiple_choice, loglikelihood, generate, rolling or pairs");
    t->kind = (KilnTaskKind)kind;
    unsigned bit = 1u << kind;
    for (size_t i = 0; i < NTOP; i++) {  // keys of other kinds, then missing keys
        const KyNode *x = ky_key(root, TOP[i].key);
        if (x && !(TOP[i].kinds & bit))
            return fail_at(&sp, x->line, "'%s' does not apply to a %s task", TOP[i].key, KINDS[kind]);
        if (!x && (TOP[i].required & bit)) return fail_at(&sp, root->line, "missing '%s' (%s task)", TOP[i].key, KINDS[kind]);
    }
    t->split_from_data = -1;
    t->max_shots_cfg = -1;
    t->max_tokens = 256;  // lm-evaluation-harness's max_gen_toks
    if (read_data(&sp, t, ky_get(root, "data"), data_dir)) return -1;
    if ((v = ky_get(root, "fewshot")) && read_fewshot(&sp, t, v, data_dir)) return -1;
    if ((v = ky_get(root, "text")) && get_template(&sp, v, "text", &t->text)) return -1;
    if ((v = ky_get(root, "target")) && get_template(&sp, v, "target", &t->target)) return -1;
    if ((v = ky_get(root, "group")) && get_template(&sp, v, "group", &t->group)) return -1;
    if ((v = ky_get(root, "count_text")) && get_template(&sp, v, "count_text", &t->count)) return -1;
    if ((v = ky_get(root, "choices")) && read_choices(&sp, t, v)) return -1;
    if ((v = ky_get(root, "label"))) {
        char why[300];
        if (v->type != KY_SCALAR || tpl_expr_parse(v->str, &t->label, why, sizeof why))
            return fail_at(&sp, v->line, "label: %s", v->type != KY_SCALAR ? "must be a field name" : why);
        if (t->label.nfilters) return fail_at(&sp, v->line, "label: a field name without filters");
    }
    if ((v = ky_get(root, "target_delimiter")) && get_str(&sp, v, "target_delimiter", &t->target_delim)) return -1;
    if ((v = ky_get(root, "fewshot_delimiter")) && get_str(&sp, v, "fewshot_delimiter", &t->fewshot_delim)) return -1;
    if (!t->target_delim && !(t->target_delim = strdup(t->kind == TASK_PAIRS || t->kind == TASK_ROLLING ? "" : " ")))
        return kiln_fail(err, "out of memory");
    if (!t->fewshot_delim && !(t->fewshot_delim = strdup("\n\n"))) return kiln_fail(err, "out of memory");
    if ((v = ky_get(root, "generate")) && read_generate(&sp, t, v)) return -1;
    if (t->kind == TASK_GENERATE && !t->until) {  // lm-evaluation-harness: stop at the few-shot delimiter
        if (!(t->until = calloc(2, sizeof *t->until)) || !(t->until[0] = strdup(t->fewshot_delim)))
            return kiln_fail(err, "out of memory");
        t->nuntil = 1;
    }
    if ((v = ky_get(root, "filters")) && read_filters(&sp, t, v)) return -1;
    if (t->kind == TASK_GENERATE && !t->filters) {  // lm-evaluation-harness's default: "none", the whole generation
        if (!(t->filters = calloc(1, sizeof *t->filters)) || !(t->filters[0].name = strdup("none")))
            return kiln_fail(err, "out of memory");
        t->nfilters = 1;
    }
    if ((v = ky_get(root, "exact_match")) && read_exact(&sp, t, v)) return -1;
    if ((v = ky_get(root, "decontaminate")) && read_decontaminate(&sp, t, v)) return -1;
    if (t->default_shots && t->max_shots_cfg >= 0 && t->default_shots > t->max_shots_cfg)
        return fail_at(&sp, ky_key(root, "fewshot")->line, "fewshot: default_shots %d above max %d", t->default_shots,
                       t->max_shots_cfg);
    return 0;
}

void task_spec_free(KilnTask *t) {
    free(t->name);
    free(t->data_path);
    free(t->label_path);
    free(t->fs_path);
    tpl_free(t->id);
    tpl_free(t->text);
    tpl_free(t->target);
    tpl_free(t->group);
    tpl_free(t->count);
    for (int i = 0; i < t->nchoice_tpl; i++) tpl_free(t->choice_tpl[i]);
    free(t->choice_tpl);
    for (int i = 0; i < t->ndc_text; i++) tpl_free(t->dc_text[i]);
    free(t->dc_text);
    tpl_expr_free(&t->choice_list);
    tpl_expr_free(&t->label);
    free(t->target_delim);
    free(t->fewshot_delim);
    for (int i = 0; t->until && t->until[i]; i++) free(t->until[i]);
    free(t->until);
    for (int i = 0; i < t->nfilters; i++) {
        free(t->filters[i].name);
        ans_regex_free(t->filters[i].re);
        free(t->filters[i].fallback);
    }
    free(t->filters);
    for (int i = 0; i < t->exact.nignore; i++) ans_regex_free(t->exact.ignore[i]);
    free(t->exact.ignore);
}
