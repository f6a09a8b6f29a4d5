// task_decontam.c: the items of a task as decontamination looks for them
// (kiln/task.h, task_decontam_items): the task file's dataset reader, ids and
// choices, with the texts of its `decontaminate` section. The decontaminate
// stage reads benchmarks only through here, so the items it looks for are the
// items `kiln eval` scores, under the same ids.
#include "task/task_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const KilnTask *t;
    const char *path;  // the data file, for messages
    KilnTaskTextsFn fn;
    void *ctx;
    KilnBuf *text;     // the item's texts (distinct), and as fn wants them
    const char **ptr;
    size_t *len;
    int ntext, cap;
    KilnBuf tmp;
} Items;

// Adds a + b as the item's next text, unless an earlier text is the same
// (GSM8K's answer without annotations, when it had none).
static int add_text(Items *it, const char *a, const char *b) {
    size_t al = strlen(a), bl = strlen(b);
    for (int k = 0; k < it->ntext; k++)
        if (it->text[k].len == al + bl && !memcmp(it->text[k].data, a, al) && !memcmp(it->text[k].data + al, b, bl))
            return 0;
    if (it->ntext == it->cap) {
        int cap = it->cap ? it->cap * 2 : 8;
        KilnBuf *v = realloc(it->text, sizeof *v * (size_t)cap);
        if (v) it->text = v;
        const char **p = realloc(it->ptr, sizeof *p * (size_t)cap);
        if (p) it->ptr = p;
        size_t *l = realloc(it->len, sizeof *l * (size_t)cap);
        if (l) it->len = l;
        if (!v || !p || !l) return -1;
        memset(v + it->cap, 0, sizeof *v * (size_t)(cap - it->cap));
        it->cap = cap;
    }
    KilnBuf *x = &it->text[it->ntext];
    if (kbuf_set(x, a, al) || kbuf_append(x, b, bl)) return -1;
    it->ptr[it->ntext] = x->data;
    it->len[it->ntext++] = x->len;
    return 0;
}

// The gold choice from the task's label field: a number, or text read as one
// (atoi); -1 when there is none (then every choice is looked for).
static int gold_label(const KilnTask *t, const cJSON *rec) {
    const cJSON *v = tpl_lookup(&t->label, rec);
    if (cJSON_IsNumber(v)) return v->valueint;
    if (cJSON_IsString(v) && v->valuestring[0]) return atoi(v->valuestring);
    return -1;
}

// The texts of one record: each decontaminate text, followed by the choices asked for.
static int item_texts(Items *it, const cJSON *rec, long index, long line, KilnErr *err) {
    const KilnTask *t = it->t;
    TaskRec r = {0};
    char why[600];
    int st = t->dc_choices == DC_NONE ? REC_OK : task_rec_choices(t, rec, index, &r, &it->tmp, why, sizeof why);
    int label = t->dc_choices == DC_GOLD ? gold_label(t, rec) : -1;
    if (!st && label >= r.nchoices) {
        snprintf(why, sizeof why, "label %d but %d choices", label, r.nchoices);
        st = REC_BAD;
    }
    it->ntext = 0;
    for (int k = 0; k < t->ndc_text && !st; k++) {
        if (tpl_render(t->dc_text[k], rec, index, &it->tmp, why, sizeof why)) {
            st = strcmp(why, "out of memory") ? REC_BAD : REC_OOM;
            break;
        }
        if (t->dc_choices == DC_NONE) st = add_text(it, it->tmp.data, "") ? REC_OOM : REC_OK;
        for (int c = 0; c < r.nchoices && !st; c++)
            if (label < 0 || c == label) st = add_text(it, it->tmp.data, r.choices[c]) ? REC_OOM : REC_OK;
    }
    task_rec_free(&r);
    if (st == REC_OOM) return kiln_fail(err, "out of memory");
    return st ? kiln_fail(err, "%s:%ld: %s", it->path, line, why) : 0;
}

static int on_record(void *ctx, const cJSON *rec, long index, long line, KilnErr *err) {
    Items *it = ctx;
    char why[600];
    if (tpl_render(it->t->id, rec, index, &it->tmp, why, sizeof why))
        return strcmp(why, "out of memory") ? kiln_fail(err, "%s:%ld: id: %s", it->path, line, why)
                                            : kiln_fail(err, "out of memory");
    char *id = strdup(it->tmp.data);
    if (!id) return kiln_fail(err, "out of memory");
    int rc = item_texts(it, rec, index, line, err);
    if (!rc) rc = it->fn(it->ctx, id, it->ptr, it->len, it->ntext, err);
    free(id);
    return rc;
}

// The task file's settings alone: its dataset is read by the caller.
static int spec_load(KilnTask **out, const char *yaml_path, KilnErr *err) {
    KilnTask *t = calloc(1, sizeof *t);
    *out = t;
    if (!t || !(t->file = strdup(yaml_path))) return kiln_fail(err, "out of memory");
    KilnYaml y;
    if (ky_load(&y, yaml_path, KY_STRICT, err)) return -1;
    int rc = ky_root(&y) ? task_spec_read(t, ky_root(&y), "", err) : kiln_fail(err, "%s: empty task file", yaml_path);
    ky_free(&y);
    if (!rc && !t->dc_text) rc = kiln_fail(err, "%s: no 'decontaminate' section (the texts looked for)", yaml_path);
    return rc;
}

int task_decontam_items(const char *yaml_path, const char *data_path, KilnTaskTextsFn fn, void *ctx, KilnErr *err) {
    KilnTask *t;
    int rc = spec_load(&t, yaml_path, err);
    if (!rc) {
        // another copy of the dataset: its own label field, not the task's label file
        DsSpec spec = {.path = data_path, .format = t->data.format, .split = t->data.split};
        Items it = {.t = t, .path = data_path, .fn = fn, .ctx = ctx};
        long nrec;
        rc = ds_read(&spec, 0, on_record, &it, &nrec, NULL, err);
        for (int k = 0; k < it.cap; k++) kbuf_free(&it.text[k]);
        free(it.text);
        free(it.ptr);
        free(it.len);
        kbuf_free(&it.tmp);
    }
    if (t) {
        task_spec_free(t);
        free(t->file);
        free(t);
    }
    return rc;
}
