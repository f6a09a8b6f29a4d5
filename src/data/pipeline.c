// pipeline.c: loads a pipeline YAML and runs it: sources -> per-document and
// corpus stages -> token shards, manifest.json and report.json (pipeline.h).
#include "kiln/pipeline.h"

#include "kiln/corpus.h"
#include "core/parse.h"
#include "core/rundir.h"
#include "core/yaml.h"
#include "data/read/sources.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

// ---------------------------------------------------------------- loading
static int fail_at(const char *path, const KyNode *n, KilnErr *err, const char *what) {
    return kiln_fail(err, "%s:%d: %s", path, n ? n->line : 0, what);
}

// Adds a mapping's entries to params: scalars as one value, sequences as a list.
static int add_params(const char *path, const KyNode *map, KilnParams *ps, KilnErr *err) {
    if (!map || (map->type == KY_SCALAR && !*map->str)) return 0;  // `- stage:` with nothing
    if (map->type != KY_MAP) return fail_at(path, map, err, "expected a mapping of parameters");
    for (int i = 0; i + 1 < map->nkids; i += 2) {
        const KyNode *k = map->kids[i], *v = map->kids[i + 1];
        if (!ky_str(k)) return fail_at(path, k, err, "a parameter name must be a plain string");
        char where[512];
        snprintf(where, sizeof where, "%s:%d", path, k->line);
        if (v->type == KY_SCALAR) {
            if (params_add(ps, k->str, v->str, where, err)) return -1;
        } else if (v->type == KY_SEQ) {
            for (int j = 0; j < v->nkids; j++) {
                const char *s = ky_str(v->kids[j]);
                if (!s) return fail_at(path, v, err, "list values must be plain strings or numbers");
                if (params_add(ps, k->str, s, where, err)) return -1;
            }
        } else {
            return fail_at(path, v, err, "a parameter value must be a scalar or a list");
        }
    }
    return 0;
}

static int load_sources(const char *path, const KyNode *seq, KilnPipeline *p, KilnErr *err) {
    if (seq->type != KY_SEQ) return fail_at(path, seq, err, "sources: expected a list");
    p->sources = calloc((size_t)seq->nkids + 1, sizeof *p->sources);
    if (!p->sources) return kiln_fail(err, "out of memory");
    for (int i = 0; i < seq->nkids; i++) {
        const KyNode *m = seq->kids[i];
        KilnPipeSource *s = &p->sources[p->nsources++];
        if (m->type != KY_MAP) return fail_at(path, m, err, "a source is a mapping with name, format, paths");
        KilnParams all = {0};
        all.stage = strdup("source");
        if (add_params(path, m, &all, err)) {
            params_free(&all);
            return -1;
        }
        const char *name = NULL, *format = NULL;
        const char *const *paths;
        int npaths;
        params_str(&all, "name", &name, err);
        params_str(&all, "format", &format, err);
        params_list(&all, "paths", &paths, &npaths, err);
        if (!name || !format || !npaths) {
            params_free(&all);
            return fail_at(path, m, err, "a source needs name, format and paths");
        }
        s->name = strdup(name);
        s->format = strdup(format);
        s->globs = calloc((size_t)npaths, sizeof *s->globs);
        for (int k = 0; s->globs && k < npaths; k++) s->globs[s->nglobs++] = strdup(paths[k]);
        // the remaining keys are the format's options
        s->opts.stage = strdup(name);
        for (int k = 0; k < all.n; k++)
            if (!all.p[k].used)
                for (int v = 0; v < all.p[k].nvals; v++)
                    if (params_add(&s->opts, all.p[k].key, all.p[k].vals[v], all.p[k].where, err)) {
                        params_free(&all);
                        return -1;
                    }
        params_free(&all);
    }
    return 0;
}

static int load_stages(const char *path, const KyNode *seq, KilnPipeline *p, KilnErr *err) {
    if (seq->type != KY_SEQ) return fail_at(path, seq, err, "stages: expected a list");
    p->stages = calloc((size_t)seq->nkids + 1, sizeof *p->stages);
    if (!p->stages) return kiln_fail(err, "out of memory");
    for (int i = 0; i < seq->nkids; i++) {
        const KyNode *m = seq->kids[i], *params = NULL;
        KilnPipeStage *s = &p->stages[p->nstages++];
        const char *name = ky_str(m);
        if (m->type == KY_MAP && m->nkids == 2) {
            name = ky_str(m->kids[0]);
            params = m->kids[1];
        }
        if (!name) return fail_at(path, m, err, "a stage is a name, or a name mapped to its parameters");
        if (!stage_find(name)) {
            char msg[256];
            snprintf(msg, sizeof msg, "unknown stage '%s' (see `kiln data --help`)", name);
            return fail_at(path, m, err, msg);
        }
        s->name = strdup(name);
        s->params.stage = strdup(name);
        if (add_params(path, params, &s->params, err)) return -1;
    }
    return 0;
}

// Where a parameter was written ("pipe.yaml:12"), else dflt, for checks made after parsing.
static const char *param_where(const KilnParams *ps, const char *key, const char *dflt) {
    const char *w = params_where(ps, key);
    return w ? w : dflt;
}

// The output section, checked here rather than when the shards are written, so
// that a bad value fails before any work (the tokenizer file is loaded then too,
// before the sources are read: pipeline_run).
static int load_output(const char *path, const KyNode *m, KilnPipeline *p, KilnErr *err) {
    KilnParams ps = {0};
    ps.stage = strdup("output");
    int rc = add_params(path, m, &ps, err);
    const char *tok = "bytes";
    if (!rc) rc = params_str(&ps, "tokenizer", &tok, err) || params_int(&ps, "shard_tokens", &p->shard_tokens, err) ||
                  params_double(&ps, "val_fraction", &p->val_fraction, err) ||
                  params_bool(&ps, "keep_work", &p->keep_work, err) || params_check_unused(&ps, err);
    if (!rc && p->shard_tokens < 1024)
        rc = kiln_fail(err, "%s: output: shard_tokens must be at least 1024, got %ld",
                       param_where(&ps, "shard_tokens", path), p->shard_tokens);
    if (!rc && !(p->val_fraction >= 0 && p->val_fraction < 1))
        rc = kiln_fail(err, "%s: output: val_fraction must be in [0, 1), got %g", param_where(&ps, "val_fraction", path),
                       p->val_fraction);
    if (!rc) {
        free(p->tokenizer), p->tokenizer = strdup(tok);
        free(p->tokenizer_where), p->tokenizer_where = strdup(param_where(&ps, "tokenizer", path));
    }
    params_free(&ps);
    return rc ? -1 : 0;
}

// "a, b, c": the pipeline's source names, for messages.
static void source_names(const KilnPipeline *p, char *out, size_t cap) {
    out[0] = 0;
    for (int i = 0; i < p->nsources; i++) {
        strncat(out, i ? ", " : "", cap - strlen(out) - 1);
        strncat(out, p->sources[i].name, cap - strlen(out) - 1);
    }
}

static int is_source(const KilnPipeline *p, const char *name, size_t len) {
    for (int i = 0; i < p->nsources; i++)
        if (strlen(p->sources[i].name) == len && !memcmp(p->sources[i].name, name, len)) return 1;
    return 0;
}

// Source names written in stages: `sources: [a, b]` on any stage and `weights:
// [a=2]` on sample must name sources of the file; a typo would otherwise filter
// or weigh nothing, silently.
static int check_source_refs(const KilnPipeline *p, KilnErr *err) {
    char known[1024];
    source_names(p, known, sizeof known);
    for (int i = 0; i < p->nstages; i++) {
        const KilnParams *ps = &p->stages[i].params;
        for (int k = 0; k < ps->n; k++) {
            const KilnParam *q = &ps->p[k];
            int weights = !strcmp(q->key, "weights") && !strcmp(p->stages[i].name, "sample");
            if (strcmp(q->key, "sources") && !weights) continue;
            for (int v = 0; v < q->nvals; v++) {
                const char *eq = weights ? strchr(q->vals[v], '=') : NULL;
                size_t len = eq ? (size_t)(eq - q->vals[v]) : strlen(q->vals[v]);
                if (!is_source(p, q->vals[v], len))
                    return kiln_fail(err, "%s: %s: %s: unknown source '%.*s' (the sources are: %s)", q->where,
                                     p->stages[i].name, q->key, (int)len, q->vals[v], known);
            }
        }
    }
    return 0;
}

// The top-level keys of the pipeline file, in the order written.
static int load_root(const char *path, const KyNode *root, KilnPipeline *p, KilnErr *err) {
    if (!root || root->type != KY_MAP)
        return kiln_fail(err, "%s: expected a mapping with sources, stages and output", path);
    int rc = 0;
    for (int i = 0; !rc && i + 1 < root->nkids; i += 2) {
        const KyNode *k = root->kids[i], *v = root->kids[i + 1];
        const char *key = ky_str(k), *val = ky_str(v);
        if (!key) rc = fail_at(path, k, err, "keys must be plain strings");
        else if ((!strcmp(key, "sources") && p->sources) || (!strcmp(key, "stages") && p->stages))
            rc = fail_at(path, k, err, "key given twice");
        else if (!strcmp(key, "sources")) rc = load_sources(path, v, p, err);
        else if (!strcmp(key, "stages")) rc = load_stages(path, v, p, err);
        else if (!strcmp(key, "output")) rc = load_output(path, v, p, err);
        else if (!strcmp(key, "out_dir") && val) free(p->out_dir), p->out_dir = strdup(val);
        else if (!strcmp(key, "seed") && val) {
            uint64_t seed;
            if (kiln_parse_u64(val, &seed)) rc = fail_at(path, v, err, "seed must be a non-negative integer");
            else p->seed = seed;
        } else {
            char msg[256];
            snprintf(msg, sizeof msg, "unknown key '%s' (sources, stages, output, out_dir, seed)", key);
            rc = fail_at(path, k, err, msg);
        }
    }
    if (!rc && !p->nsources) rc = kiln_fail(err, "%s: no sources", path);
    if (!rc && !p->out_dir) rc = kiln_fail(err, "%s: out_dir is required", path);
    if (!rc && !p->tokenizer) p->tokenizer = strdup("bytes");
    if (!rc) rc = check_source_refs(p, err);
    return rc;
}

int pipeline_load(KilnPipeline *p, const char *path, KilnErr *err) {
    memset(p, 0, sizeof *p);
    p->seed = 1234;
    p->shard_tokens = 10000000;
    p->val_fraction = 0.005;
    p->path = strdup(path);
    char *text;
    size_t len;
    if (kiln_read_file(path, &text, &len, err)) {
        pipeline_free(p);
        return -1;
    }
    p->fingerprint = XXH3_64bits(text, len);
    KilnYaml y;
    int rc = ky_parse(&y, text, len, path, KY_FIRST_DOC, err);
    free(text);
    if (!rc) {
        rc = load_root(path, ky_root(&y), p, err);
        ky_free(&y);
    }
    if (rc) pipeline_free(p);
    return rc;
}

void pipeline_free(KilnPipeline *p) {
    for (int i = 0; i < p->nsources; i++) {
        KilnPipeSource *s = &p->sources[i];
        free(s->name);
        free(s->format);
        for (int k = 0; k < s->nglobs; k++) free(s->globs[k]);
        free(s->globs);
        params_free(&s->opts);
    }
    for (int i = 0; i < p->nstages; i++) {
        free(p->stages[i].name);
        params_free(&p->stages[i].params);
    }
    free(p->sources);
    free(p->stages);
    free(p->path);
    free(p->out_dir);
    free(p->tokenizer);
    free(p->tokenizer_where);
    memset(p, 0, sizeof *p);
}

// ---------------------------------------------------------------- reports
int stage_report_json(const KilnStageReport *r, KilnBuf *b) {
    int bad = kbuf_puts(b, "{\"stage\":") | kbuf_json_str(b, r->name) |
              kbuf_printf(b,
                          ",\"docs_in\":%ld,\"docs_out\":%ld,\"docs_dropped\":%ld,\"docs_changed\":%ld,"
                          "\"bytes_in\":%ld,\"bytes_out\":%ld,\"seconds\":%.3f,\"mb_per_s_per_core\":%.1f,\"drops\":[",
                          r->docs_in, r->docs_out, r->docs_in - r->docs_out, r->docs_changed, r->bytes_in,
                          r->bytes_out, r->seconds, r->seconds > 0 ? r->bytes_in / r->seconds / 1e6 : 0.0);
    for (int i = 0; i < r->nreasons; i++) {
        const KilnDropReason *d = &r->reasons[i];
        bad |= kbuf_puts(b, i ? ",{\"reason\":" : "{\"reason\":") | kbuf_json_str(b, d->reason) |
               kbuf_printf(b, ",\"docs\":%ld,\"bytes\":%ld,\"examples\":[", d->docs, d->bytes);
        for (long k = 0; k < d->docs && k < KILN_DROP_EXAMPLES; k++)
            bad |= kbuf_puts(b, k ? "," : "") | kbuf_json_str(b, d->examples[k]);
        bad |= kbuf_puts(b, "]}");
    }
    bad |= kbuf_printf(b, "],\"skipped\":%ld,\"skip_examples\":[", r->skips.count);
    for (long k = 0; k < r->skips.count && k < KILN_SKIP_EXAMPLES; k++)
        bad |= kbuf_puts(b, k ? "," : "") | kbuf_json_str(b, r->skips.examples[k]);
    bad |= kbuf_putc(b, ']');
    if (r->extra_json) bad |= kbuf_puts(b, ",\"details\":") | kbuf_puts(b, r->extra_json);
    return bad | kbuf_putc(b, '}') ? -1 : 0;
}

// ---------------------------------------------------------------- running
// All sources one after the other, counting documents per source.
typedef struct {
    const KilnPipeline *p;
    int cur;
    KilnSourceReader *r;
    long *docs, *bytes, *files, *raw, *skips;
    KilnBuf skip_json;  // "source": [examples...] entries
} AllSources;

static void close_current(AllSources *a) {
    if (!a->r) return;
    const KilnSkips *s = source_skips(a->r);
    a->files[a->cur] = source_files(a->r);
    a->raw[a->cur] = source_bytes(a->r);
    a->skips[a->cur] = s->count;
    for (long k = 0; k < s->count && k < KILN_SKIP_EXAMPLES; k++) {
        kbuf_puts(&a->skip_json, a->skip_json.len ? "," : "");
        kbuf_json_str(&a->skip_json, s->examples[k]);
    }
    source_close(a->r);
    a->r = NULL;
    a->cur++;
}

static int all_next(void *ctx, KilnDoc *doc, KilnErr *err) {
    AllSources *a = ctx;
    while (a->cur < a->p->nsources) {
        if (!a->r) {
            const KilnPipeSource *s = &a->p->sources[a->cur];
            KilnSourceSpec spec = {s->name, s->format, (const char *const *)s->globs, s->nglobs,
                                   (KilnParams *)&s->opts};
            if (source_open(&a->r, &spec, err)) return kiln_wrap(err, "source %s", s->name);
            if (params_check_unused(&s->opts, err)) return -1;
        }
        int got = source_docs(a->r).next(source_docs(a->r).ctx, doc, err);
        if (got < 0) return kiln_wrap(err, "source %s", a->p->sources[a->cur].name);
        if (got > 0) {
            a->docs[a->cur]++;
            a->bytes[a->cur] += (long)doc->text.len;
            return 1;
        }
        close_current(a);
    }
    return 0;
}

static void path_join(char *out, size_t cap, const char *dir, const char *name) {
    snprintf(out, cap, "%s/%s", dir, name);
}

// A step's marker holds the pipeline's fingerprint and the step's report JSON.
static char *read_marker(const char *path, uint64_t fingerprint) {
    char *text;
    size_t len;
    KilnErr e;
    if (kiln_read_file(path, &text, &len, &e)) return NULL;
    unsigned long long fp;
    int off = 0;
    if (sscanf(text, "%llx\n%n", &fp, &off) != 1 || fp != fingerprint || off <= 0) {
        free(text);
        return NULL;
    }
    char *json = strdup(text + off);
    free(text);
    return json;
}

static int write_marker(const char *path, uint64_t fingerprint, const char *json, KilnErr *err) {
    KilnAtomicFile af;
    char head[32];
    snprintf(head, sizeof head, "%016llx\n", (unsigned long long)fingerprint);
    if (kiln_atomic_open(&af, path, err)) return -1;
    kiln_atomic_write(&af, head, strlen(head), err);
    kiln_atomic_write(&af, json, strlen(json), err);
    return kiln_atomic_commit(&af, err);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

// Step 0: every source into work/00-sources.jsonl.
static int run_sources(const KilnPipeline *p, const char *out_path, KilnBuf *report, KilnErr *err) {
    int n = p->nsources;
    AllSources a = {.p = p};
    long *counts = calloc((size_t)n * 5, sizeof *counts);
    if (!counts) return kiln_fail(err, "out of memory");
    a.docs = counts, a.bytes = counts + n, a.files = counts + 2 * n, a.raw = counts + 3 * n, a.skips = counts + 4 * n;
    KilnDocWriter *w;
    double t0 = kiln_now();
    int rc = docwriter_open(&w, out_path, err);
    if (!rc) {
        rc = stages_run_stream(NULL, 0, (KilnDocSource){.next = all_next, .ctx = &a}, w, NULL, err);
        if (rc) docwriter_abort(w);
        else rc = docwriter_commit(w, err);
    }
    if (a.r) source_close(a.r);
    if (!rc) {
        long docs = 0, bytes = 0, skipped = 0;
        for (int i = 0; i < n; i++) docs += a.docs[i], bytes += a.bytes[i], skipped += a.skips[i];
        int bad = kbuf_printf(report,
                              "{\"stage\":\"sources\",\"docs_in\":%ld,\"docs_out\":%ld,\"bytes_in\":%ld,"
                              "\"bytes_out\":%ld,\"seconds\":%.3f,\"drops\":[],\"skipped\":%ld,\"skip_examples\":[",
                              docs, docs, bytes, bytes, kiln_now() - t0, skipped) |
                  kbuf_append(report, a.skip_json.data, a.skip_json.len) |
                  kbuf_puts(report, "],\"details\":{\"sources\":{");
        for (int i = 0; i < n; i++)
            bad |= kbuf_puts(report, i ? "," : "") | kbuf_json_str(report, p->sources[i].name) |
                   kbuf_puts(report, ":{\"format\":") | kbuf_json_str(report, p->sources[i].format) |
                   kbuf_printf(report, ",\"files\":%ld,\"raw_bytes\":%ld,\"docs\":%ld,\"bytes\":%ld,\"skipped\":%ld}",
                               a.files[i], a.raw[i], a.docs[i], a.bytes[i], a.skips[i]);
        bad |= kbuf_puts(report, "},\"skip_examples\":[") | kbuf_append(report, a.skip_json.data, a.skip_json.len) |
               kbuf_puts(report, "]}}");
        if (bad) rc = kiln_fail(err, "out of memory");
    }
    kbuf_free(&a.skip_json);
    free(counts);
    return rc;
}

// out_dir/rejects/NN-STAGE.jsonl: what stage i (NN = i + 1, its place in the
// stages list) dropped, for a stage with `rejects: true`.
static void rejects_path(char *out, size_t cap, const KilnPipeline *p, int i) {
    snprintf(out, cap, "%s/rejects/%02d-%s.jsonl", p->out_dir, i + 1, p->stages[i].name);
}

// One step: per-document stages [first, last] streamed, or one corpus stage.
// want_rejects[i]: stage i keeps its dropped documents in its rejects file,
// which is replaced only when the step succeeds.
static int run_step(const KilnPipeline *p, int first, int last, KilnStage *st, const int *want_rejects,
                    const char *in_path, const char *out_path, const char *work, KilnBuf *report, KilnErr *err) {
    int n = last - first + 1, rc = 0;
    KilnStageReport *reps = calloc((size_t)n, sizeof *reps);
    if (!reps) return kiln_fail(err, "out of memory");
    for (int k = 0; k < n; k++) stage_report_init(&reps[k], p->stages[first + k].name);
    for (int k = first; !rc && k <= last; k++) {
        st[k].rejects = NULL;
        if (!want_rejects[k]) continue;
        char path[4096];
        rejects_path(path, sizeof path, p, k);
        rc = docwriter_open(&st[k].rejects, path, err);
    }
    KilnDocWriter *w = NULL;
    if (!rc) rc = docwriter_open(&w, out_path, err);
    if (!rc) {
        double t0 = kiln_now();
        if (st[first].def->apply) {
            KilnDocReader *r;
            rc = docreader_open(&r, in_path, NULL, NULL, err);
            if (!rc) {
                rc = stages_run_stream(st + first, n, docreader_source(r), w, reps, err);
                skips_merge(&reps[0].skips, docreader_skips(r));  // lines the step's reader skipped
                docreader_close(r);
            }
        } else {
            rc = st[first].def->run_corpus(st[first].state, in_path, w, st[first].rejects, work, &reps[0], err);
            if (reps[0].seconds == 0) reps[0].seconds = kiln_now() - t0;  // stages may report CPU time
        }
        if (rc) docwriter_abort(w);
        else rc = docwriter_commit(w, err);
    }
    for (int k = first; k <= last; k++) {
        if (!st[k].rejects) continue;
        if (rc) docwriter_abort(st[k].rejects);
        else rc = docwriter_commit(st[k].rejects, err);
        st[k].rejects = NULL;
    }
    for (int k = 0; !rc && k < n; k++) {
        if (st[first + k].def->report_json) reps[k].extra_json = st[first + k].def->report_json(st[first + k].state);
        kbuf_puts(report, k ? "," : "");
        stage_report_json(&reps[k], report);
    }
    for (int k = 0; k < n; k++) stage_report_free(&reps[k]);
    free(reps);
    return rc;
}

// The last step: documents to shards and the manifest.
static int run_tokenize(const KilnPipeline *p, KilnTokenizer *tok, const char *in_path, KilnBuf *report,
                        KilnErr *err) {
    // the corpus writer stages the shards and replaces out_dir's earlier ones only
    // once all are written
    KilnCorpusOptions o = {.out_dir = p->out_dir, .tok = tok, .tok_name = p->tokenizer, .shard_tokens = p->shard_tokens,
                           .val_fraction = p->val_fraction, .seed = p->seed, .special = KILN_SPECIAL_TEXT};
    KilnCorpusWriter *cw;
    KilnDocReader *r = NULL;
    enum { B = 1024 };
    KilnDoc *docs = calloc(B, sizeof *docs);
    double t0 = kiln_now();
    long bytes = 0;
    int rc = docs ? 0 : kiln_fail(err, "out of memory");
    if (!rc) rc = corpus_writer_open(&cw, &o, err);
    if (!rc && docreader_open(&r, in_path, NULL, NULL, err)) {
        corpus_writer_abort(cw);
        rc = -1;
    }
    if (!rc) {
        for (;;) {
            int n = 0, got = 0;
            while (n < B && (got = docreader_next(r, &docs[n], err)) > 0) bytes += (long)docs[n++].text.len;
            if (got < 0 || (n && corpus_writer_add(cw, docs, n, err))) {
                rc = -1;
                break;
            }
            if (n < B) break;
        }
        long ndocs = corpus_writer_docs(cw), ntok = corpus_writer_tokens(cw);
        KilnBuf extra = {0};
        if (!rc && (kbuf_puts(&extra, "\"pipeline\":") || kbuf_json_str(&extra, p->path) ||
                    kbuf_printf(&extra, ",\"pipeline_fingerprint\":\"%016llx\"", (unsigned long long)p->fingerprint)))
            rc = kiln_fail(err, "out of memory");
        if (rc) corpus_writer_abort(cw);
        else rc = corpus_writer_finish(cw, extra.data, err);
        kbuf_free(&extra);
        if (!rc && (kbuf_printf(report,
                                "{\"stage\":\"tokenize\",\"docs_in\":%ld,\"docs_out\":%ld,\"bytes_in\":%ld,"
                                "\"bytes_out\":%ld,\"seconds\":%.3f,\"drops\":[],\"skipped\":%ld,\"skip_examples\":[],"
                                "\"details\":{\"tokens\":%ld,\"tokenizer\":",
                                ndocs, ndocs, bytes, bytes, kiln_now() - t0, docreader_skips(r)->count, ntok) ||
                    kbuf_json_str(report, p->tokenizer) || kbuf_puts(report, "}}")))
            rc = kiln_fail(err, "out of memory");
    }
    if (r) docreader_close(r);
    for (int i = 0; docs && i < B; i++) doc_free(&docs[i]);
    free(docs);
    return rc;
}

static long jnum(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (long)v->valuedouble : 0;
}

// One row per stage with its drop reasons and an example of each.
void stage_reports_print(FILE *f, const cJSON *steps) {
    const cJSON *s;
    fprintf(f, "%-18s %10s %10s %8s %10s %10s %10s\n", "stage", "docs in", "docs out", "kept", "MB in", "MB out",
            "MB/s/core");
    cJSON_ArrayForEach(s, steps) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(s, "stage");
        long din = jnum(s, "docs_in"), dout = jnum(s, "docs_out");
        double secs = cJSON_GetObjectItemCaseSensitive(s, "seconds")->valuedouble;
        fprintf(f, "%-18s %10ld %10ld %7.1f%% %10.1f %10.1f %10.1f\n", name->valuestring, din, dout,
                din ? 100.0 * dout / din : 100.0, jnum(s, "bytes_in") / 1e6, jnum(s, "bytes_out") / 1e6,
                secs > 0 ? jnum(s, "bytes_in") / secs / 1e6 : 0.0);
        const cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(s, "drops")) {
            const cJSON *ex = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(d, "examples"), 0);
            fprintf(f, "    - %-36s %8ld docs  e.g. %.80s\n", cJSON_GetObjectItemCaseSensitive(d, "reason")->valuestring,
                    jnum(d, "docs"), cJSON_IsString(ex) ? ex->valuestring : "");
        }
        if (jnum(s, "skipped") > 0) {  // input lines that were not documents: counted, never silent
            const cJSON *ex = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(s, "skip_examples"), 0);
            fprintf(f, "    ! %-36s %8ld lines e.g. %.80s\n", "skipped input", jnum(s, "skipped"),
                    cJSON_IsString(ex) ? ex->valuestring : "");
        }
    }
}

// The readable summary: one row per stage, its drop reasons with an example,
// the sources, and whether the counts chain (docs out of a step = docs into the
// next one).
static void print_summary(FILE *f, const KilnPipeline *p, const cJSON *steps, int consistent) {
    fprintf(f, "pipeline %s -> %s\n\n", p->path, p->out_dir);
    const cJSON *first = cJSON_GetArrayItem(steps, 0);
    const cJSON *srcs = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(first, "details"), "sources");
    fprintf(f, "%-14s %-8s %8s %10s %10s %8s\n", "source", "format", "files", "docs", "MB", "skipped");
    const cJSON *s;
    cJSON_ArrayForEach(s, srcs) {
        const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(s, "format");
        fprintf(f, "%-14s %-8s %8ld %10ld %10.1f %8ld\n", s->string, cJSON_IsString(fmt) ? fmt->valuestring : "",
                jnum(s, "files"), jnum(s, "docs"), jnum(s, "bytes") / 1e6, jnum(s, "skipped"));
    }
    fputc('\n', f);
    stage_reports_print(f, steps);
    const cJSON *last = cJSON_GetArrayItem(steps, cJSON_GetArraySize(steps) - 1);
    fprintf(f, "\n%ld tokens in %s; counts %s\n", jnum(cJSON_GetObjectItemCaseSensitive(last, "details"), "tokens"),
            p->out_dir, consistent ? "add up from step to step" : "DO NOT ADD UP (a bug: please report)");
}

// Writes report.json (every step) and report.txt (the readable summary).
static int write_reports(const KilnPipeline *p, const KilnBuf *steps, FILE *progress, KilnErr *err) {
    KilnBuf j = {0};
    kbuf_putc(&j, '[');
    kbuf_append(&j, steps->data, steps->len);
    kbuf_putc(&j, ']');
    cJSON *arr = cJSON_ParseWithLength(j.data, j.len);
    kbuf_free(&j);
    if (!arr) return kiln_fail(err, "internal error: a stage wrote an invalid report");
    // numbers add up: what a step passes on is what the next one receives
    int consistent = 1;
    for (int i = 1; i < cJSON_GetArraySize(arr); i++) {
        const cJSON *a = cJSON_GetArrayItem(arr, i - 1), *b = cJSON_GetArrayItem(arr, i);
        if (jnum(a, "docs_out") != jnum(b, "docs_in") || jnum(a, "bytes_out") != jnum(b, "bytes_in")) consistent = 0;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "pipeline", p->path);
    cJSON_AddStringToObject(root, "out_dir", p->out_dir);
    cJSON_AddNumberToObject(root, "seed", (double)p->seed);
    cJSON_AddStringToObject(root, "kiln", kiln_version());
    cJSON_AddStringToObject(root, "commit", kiln_git_commit());
    cJSON_AddBoolToObject(root, "counts_consistent", consistent);
    cJSON_AddItemToObject(root, "steps", arr);
    char path[4096];
    path_join(path, sizeof path, p->out_dir, "report.json");
    int rc = kiln_write_json(path, root, err);
    if (!rc) {
        path_join(path, sizeof path, p->out_dir, "report.txt");
        KilnAtomicFile af;  // its temp file is made exclusively, never through a planted link
        rc = kiln_atomic_open(&af, path, err);
        if (!rc) {
            print_summary(af.f, p, arr, consistent);
            if (ferror(af.f)) af.failed = 1, rc = kiln_fail(err, "%s: write failed", path);
            rc = kiln_atomic_commit(&af, err) || rc;
        }
        if (!rc && progress) fputc('\n', progress), print_summary(progress, p, arr, consistent);
    }
    cJSON_Delete(root);
    if (!rc && !consistent) rc = kiln_fail(err, "%s: the step counts do not add up (see report.json)", p->out_dir);
    return rc ? -1 : 0;
}

// The temp files of report.json and report.txt that a killed run left in
// out_dir (one `kiln data run` per out_dir: no other run's are at work there).
static void remove_stale_temps(const char *out_dir) {
    DIR *d = opendir(out_dir);
    char path[4096];
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (!strncmp(e->d_name, ".kiln-", 6) && l > 4 && !strcmp(e->d_name + l - 4, ".tmp")) {
            path_join(path, sizeof path, out_dir, e->d_name);
            unlink(path);
        }
    }
    if (d) closedir(d);
}

// The steps' files are written under out_dir/work: a link planted there would
// send them (and the removal of work/ afterwards) elsewhere.
static int refuse_link(const char *path, KilnErr *err) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return kiln_fail(err, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return kiln_fail(err, "%s: not a directory (a symbolic link or a file is there; remove it)", path);
    return 0;
}

int pipeline_run(const KilnPipeline *p, FILE *progress, KilnErr *err) {
    char work[4096], in[4096], out[4096], marker[4096];
    KilnStage *st = calloc((size_t)p->nstages + 1, sizeof *st);
    int *want_rejects = calloc((size_t)p->nstages + 1, sizeof *want_rejects);
    KilnTokenizer *tok = NULL;
    int rc = st && want_rejects ? 0 : kiln_fail(err, "out of memory"), lock = -1;
    // every source's format options are checked, every stage is built (and its
    // parameters checked), and the tokenizer loaded, before anything is read or written
    for (int i = 0; !rc && i < p->nsources; i++) {
        const KilnPipeSource *s = &p->sources[i];
        KilnSourceSpec spec = {s->name, s->format, (const char *const *)s->globs, s->nglobs, (KilnParams *)&s->opts};
        if (source_check(&spec, err)) rc = kiln_wrap(err, "%s: source %s", p->path, s->name);
    }
    for (int i = 0; !rc && i < p->nstages; i++) {
        st[i].def = stage_find(p->stages[i].name);
        KilnParams *ps = (KilnParams *)&p->stages[i].params;
        // `sources: [a, b]` limits a per-document stage to those sources
        rc = params_list(ps, "sources", &st[i].only, &st[i].nonly, err) ||
             params_bool(ps, "rejects", &want_rejects[i], err);
        if (!rc && st[i].nonly && !st[i].def->apply)
            rc = kiln_fail(err, "%s: %s is a corpus stage and runs on every source; 'sources' is for "
                           "per-document stages", param_where(ps, "sources", p->path), p->stages[i].name);
        if (!rc) rc = st[i].def->create(ps, p->seed, &st[i].state, err) || params_check_unused(ps, err);
    }
    if (!rc && strcmp(p->tokenizer, "bytes") && tokenizer_load(&tok, p->tokenizer, err))
        rc = kiln_wrap(err, "%s: output.tokenizer", p->tokenizer_where ? p->tokenizer_where : p->path);
    // one pipeline per out_dir: a second one would replace the first one's work
    // files and shards under it (the lock goes with the process, even a killed one)
    if (!rc) rc = kiln_mkdirs(p->out_dir, err) || rundir_lock(p->out_dir, "kiln data run", &lock, err);
    path_join(work, sizeof work, p->out_dir, "work");
    if (!rc) rc = kiln_mkdirs(work, err) || refuse_link(work, err);
    for (int i = 0; !rc && i < p->nstages; i++)
        if (want_rejects[i]) {
            path_join(in, sizeof in, p->out_dir, "rejects");
            rc = kiln_mkdirs(in, err);
            break;
        }
    if (!rc) remove_stale_temps(p->out_dir);
    KilnBuf steps = {0};  // the steps' report objects, comma-separated
    int nsteps = 2, step = 0;
    for (int i = 0; !rc && i < p->nstages; i++)  // after a stage failed to build, later ones have no def
        if (!st[i].def->apply || i == 0 || !st[i - 1].def->apply) nsteps++;
    // step 0: sources
    path_join(out, sizeof out, work, "00-sources.jsonl");
    path_join(marker, sizeof marker, work, "00-sources.done");
    char *done = rc ? NULL : read_marker(marker, p->fingerprint);
    KilnBuf rep = {0};
    if (!rc) {
        if (done && file_exists(out)) {
            if (progress) fprintf(progress, "[%d/%d] sources: already done (resuming)\n", ++step, nsteps);
            kbuf_puts(&steps, done);
        } else {
            if (progress) fprintf(progress, "[%d/%d] sources: reading %d source(s)...\n", ++step, nsteps, p->nsources);
            rc = run_sources(p, out, &rep, err) || write_marker(marker, p->fingerprint, rep.data, err);
            if (!rc) kbuf_append(&steps, rep.data, rep.len);
        }
    }
    free(done);
    for (int i = 0; !rc && i < p->nstages;) {
        int j = i;
        if (st[i].def->apply)
            while (j + 1 < p->nstages && st[j + 1].def->apply) j++;
        snprintf(in, sizeof in, "%s", out);
        char name[256];
        snprintf(name, sizeof name, "%02d-%s", step, p->stages[j].name);
        snprintf(out, sizeof out, "%s/%s.jsonl", work, name);
        snprintf(marker, sizeof marker, "%s/%s.done", work, name);
        char label[512] = "";
        for (int k = i; k <= j; k++) {
            strncat(label, k > i ? "+" : "", sizeof label - strlen(label) - 1);
            strncat(label, p->stages[k].name, sizeof label - strlen(label) - 1);
        }
        done = read_marker(marker, p->fingerprint);
        kbuf_clear(&rep);
        if (done && file_exists(out)) {
            if (progress) fprintf(progress, "[%d/%d] %s: already done (resuming)\n", ++step, nsteps, label);
            kbuf_puts(&rep, done);
        } else {
            if (progress) fprintf(progress, "[%d/%d] %s...\n", ++step, nsteps, label), fflush(progress);
            double t0 = kiln_now();
            rc = run_step(p, i, j, st, want_rejects, in, out, work, &rep, err) ||
                 write_marker(marker, p->fingerprint, rep.data, err);
            if (!rc && progress) fprintf(progress, "        done in %.1f s\n", kiln_now() - t0);
        }
        free(done);
        if (!rc) {
            kbuf_puts(&steps, ",");
            kbuf_append(&steps, rep.data, rep.len);
        }
        i = j + 1;
    }
    if (!rc) {
        if (progress) fprintf(progress, "[%d/%d] tokenize (%s) and write shards...\n", ++step, nsteps, p->tokenizer);
        kbuf_clear(&rep);
        rc = run_tokenize(p, tok, out, &rep, err);
        if (!rc) {
            kbuf_puts(&steps, ",");
            kbuf_append(&steps, rep.data, rep.len);
            rc = write_reports(p, &steps, progress, err);
        }
    }
    if (!rc && !p->keep_work) kiln_remove_tree(work);  // never through a link planted at work/
    for (int i = 0; st && i < p->nstages; i++)
        if (st[i].def && st[i].def->destroy && st[i].state) st[i].def->destroy(st[i].state);
    free(st);
    free(want_rejects);
    tokenizer_free(tok);
    rundir_unlock(lock);
    kbuf_free(&rep);
    kbuf_free(&steps);
    return rc;
}
