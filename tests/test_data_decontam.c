// test_data_decontam.c: the decontaminate stage and its n-gram index. Real
// HellaSwag, LAMBADA and GSM8K items, with case, punctuation and whitespace
// changed, are planted into real WikiText-2 paragraphs: every one must be found
// and reported, excision must remove it, drop mode must drop it, and unplanted
// WikiText-2 / TinyStories text must match nothing. Boundaries: items of exactly
// n words, n-1 words, windows that merge, the piece-count and piece-length
// limits, items cut across two documents; malformed evaluation files.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "kiln/data.h"
#include "core/utf8.h"
#include "data/stage/decontam.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char data_dir[4096];
static char spec_hs[4300], spec_lb[4300], spec_gsm[4300], spec_gsm_q[4300];

// ---------------------------------------------------------------- helpers
typedef struct {
    char *id, *text;
    size_t len;
} Item;
typedef struct {
    Item *v;
    int n, cap;
} Items;

static int collect(void *ctx, const char *task, const char *id, const char *const *texts, const size_t *lens,
                   int ntexts, KilnErr *err) {
    (void)task;
    (void)err;
    Items *it = ctx;
    if (it->n == it->cap) {
        it->cap = it->cap ? 2 * it->cap : 256;
        it->v = realloc(it->v, (size_t)it->cap * sizeof *it->v);
    }
    Item *x = &it->v[it->n++];
    x->id = strdup(id);
    x->len = ntexts ? lens[0] : 0;
    x->text = malloc(x->len + 1);
    memcpy(x->text, ntexts ? texts[0] : "", x->len);
    x->text[x->len] = 0;
    return 0;
}

static void items_free(Items *it) {
    for (int i = 0; i < it->n; i++) {
        free(it->v[i].id);
        free(it->v[i].text);
    }
    free(it->v);
    memset(it, 0, sizeof *it);
}

static Items read_items(const char *spec) {
    Items it = {0};
    KilnErr err;
    if (decontam_read_eval(spec, collect, &it, NULL, &err)) fail_msg("%s", err.msg);
    return it;
}

// WikiText-2 raw test paragraphs (lines that are not headings), at least min_len bytes.
typedef struct {
    char **v;
    int n;
} Paras;

static Paras read_paras(const char *rel, const char *sep, size_t min_len) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", data_dir, rel);
    char *data;
    size_t len;
    KilnErr err;
    if (kiln_read_file(path, &data, &len, &err)) fail_msg("%s", err.msg);
    Paras p = {0};
    int cap = 0;
    size_t sl = strlen(sep);
    for (char *s = data; s < data + len;) {
        char *e = strstr(s, sep);
        if (!e) e = data + len;
        size_t a = 0, b = (size_t)(e - s);
        while (a < b && isspace((unsigned char)s[a])) a++;
        while (b > a && isspace((unsigned char)s[b - 1])) b--;
        if (b - a >= min_len && s[a] != '=') {
            if (p.n == cap) p.v = realloc(p.v, sizeof(char *) * (size_t)(cap = cap ? 2 * cap : 1024));
            p.v[p.n++] = strndup(s + a, b - a);
        }
        s = e + sl;
    }
    free(data);
    return p;
}

static void paras_free(Paras *p) {
    for (int i = 0; i < p->n; i++) free(p->v[i]);
    free(p->v);
}

// The stage with params key=value pairs (NULL-terminated).
#define stage_new(kv, err) test_stage_new(stage_find("decontaminate"), kv, 1, err)

static void *stage_std(const char *mode, const char *margin) {
    const char *kv[] = {"eval", spec_hs, "eval", spec_lb, "eval", spec_gsm, "mode", mode, "margin", margin, NULL};
    KilnErr err;
    void *st = stage_new(kv, &err);
    if (!st) fail_msg("%s", err.msg);
    return st;
}

static const char *apply(void *st, KilnDoc *d, KilnScratch *s, const char *source, const char *text, size_t len) {
    kbuf_set(&d->source, source, strlen(source));
    kbuf_set(&d->id, "doc", 3);
    kbuf_set(&d->text, text, len);
    return stage_find("decontaminate")->apply(st, d, s);
}

static cJSON *report(void *st) {
    char *js = stage_find("decontaminate")->report_json(st);
    assert_non_null(js);
    cJSON *r = cJSON_Parse(js);
    free(js);
    assert_non_null(r);
    return r;
}

static int id_in(const cJSON *report_task, const char *id) {
    const cJSON *ids = cJSON_GetObjectItem(report_task, "found_ids"), *x;
    cJSON_ArrayForEach(x, ids) if (!strcmp(x->valuestring, id)) return 1;
    return 0;
}

// Case, punctuation and whitespace changes that normalisation must undo: words
// upper- or title-cased, punctuation added or removed, ASCII apostrophes turned
// into ’, stand-alone dashes inserted, spaces turned into newlines or doubled.
static char *perturb(const char *t, KilnRng *r) {
    size_t n = strlen(t);
    char *o = malloc(4 * n + 64), *p = o;
    int up = 0, title = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (isspace(c)) {
            float u = kiln_rng_uniform(r);
            if (u < 0.05f) p += sprintf(p, " -- ");
            else if (u < 0.15f) *p++ = '\n';
            else if (u < 0.25f) p += sprintf(p, "  ");
            else *p++ = ' ';
            if (kiln_rng_uniform(r) < 0.08f) *p++ = "\"(,;!?"[kiln_rng_u64(r) % 6];  // before the next word
            up = kiln_rng_uniform(r) < 0.15f;
            title = kiln_rng_uniform(r) < 0.2f;
            continue;
        }
        if (c == '\'' && kiln_rng_uniform(r) < 0.5f) {
            p += sprintf(p, "\xE2\x80\x99");
            continue;
        }
        if (ispunct(c) && kiln_rng_uniform(r) < 0.3f) continue;  // dropped punctuation
        if (c < 0x80 && (up || title)) c = (unsigned char)toupper(c);
        title = 0;
        *p++ = (char)c;
        if (kiln_rng_uniform(r) < 0.01f) *p++ = '.';
    }
    *p = 0;
    return o;
}

// Every item of the index whose n-grams occur in text (its hits' items).
typedef struct {
    unsigned char *mark;
} Marks;
static int mark_hit(void *ctx, const KilnNgramHit *h) {
    for (int k = 0; k < h->nitems; k++) ((Marks *)ctx)->mark[h->items[k]] = 1;
    return 0;
}
static int count_hit(void *ctx, const KilnNgramHit *h) {
    (void)h;
    ++*(long *)ctx;
    return 0;
}

static KilnDecontamIndex *std_index(void) {
    KilnDecontamIndex *ix;
    KilnErr err;
    assert_int_equal(decontam_index_new(&ix, 13, 8, &err), 0);
    const char *specs[] = {spec_hs, spec_lb, spec_gsm};
    for (int i = 0; i < 3; i++)
        if (decontam_index_add_file(ix, specs[i], &err)) fail_msg("%s", err.msg);
    assert_int_equal(decontam_index_build(ix, &err), 0);
    return ix;
}

// ---------------------------------------------------------------- words
typedef struct {
    char w[16][32];
    int n;
} Words;
static void word_cb(void *ctx, const char *w, size_t len, size_t start, size_t end) {
    (void)start;
    (void)end;
    Words *x = ctx;
    if (x->n < 16) snprintf(x->w[x->n++], 32, "%.*s", (int)len, w);
}

static void test_words(void **st) {
    (void)st;
    Words w = {0};
    // curly apostrophe deleted, case folded (É too), punctuation-only pieces vanish,
    // U+00A0 and U+3000 split, "well-known" is one word as in lm-evaluation-harness
    const char *t = "Janet\xE2\x80\x99s DUCKS, lay 16 eggs!! \xE2\x80\x94 per\xC2\xA0" "day \xC3\x89T\xC3\x89\xE3\x80\x80well-known";
    assert_int_equal(decontam_words(t, strlen(t), word_cb, &w), 9);
    const char *want[] = {"janets", "ducks", "lay", "16", "eggs", "per", "day", "\xC3\xA9t\xC3\xA9", "wellknown"};
    for (int i = 0; i < 9; i++) assert_string_equal(w.w[i], want[i]);
}

// ---------------------------------------------------------------- readers
static void test_readers(void **st) {
    (void)st;
    KilnDecontamIndex *ix = std_index();
    assert_int_equal(decontam_ntasks(ix), 3);
    assert_string_equal(decontam_task_name(ix, 0), "hellaswag");
    assert_int_equal(decontam_task_items(ix, 0), 793);
    assert_int_equal(decontam_task_items(ix, 1), 4111);
    assert_int_equal(decontam_task_items(ix, 2), 1050);
    for (int t = 0; t < 3; t++) assert_int_equal(decontam_task_too_short(ix, t), 0);
    // HellaSwag ids are the dataset's ind (the first line's is 20022)
    long it = decontam_item_find(ix, "hellaswag/20022");
    assert_true(it >= 0);
    assert_int_equal(decontam_item_task(ix, it), 0);
    assert_int_equal(decontam_item_find(ix, "lambada/4110"), 793 + 4110);
    assert_int_equal(decontam_item_find(ix, "lambada/4111"), -1);
    print_message("index: %ld distinct n-grams, %.1f MiB\n", decontam_nngrams(ix),
                  decontam_index_bytes(ix) / 1048576.0);
    // the wikiHow markup is gone from the text indexed (lm-evaluation-harness preprocess)
    Items hs = read_items(spec_hs);
    int wikihow = 0;
    for (int i = 0; i < hs.n; i++) {
        assert_null(strstr(hs.v[i].text, "[step]"));
        assert_null(strstr(hs.v[i].text, "[title]"));
        wikihow += strstr(hs.v[i].text, "How to ") != NULL;
    }
    assert_true(wikihow > 50);  // 71 of the 793 are wikiHow items
    items_free(&hs);
    // PIQA: two texts per item; many of its items are shorter than 8 words
    char spec[4400];
    snprintf(spec, sizeof spec, "%s/eval/piqa/valid.jsonl", data_dir);
    KilnErr err;
    decontam_index_free(ix);
    assert_int_equal(decontam_index_new(&ix, 13, 8, &err), 0);
    assert_int_equal(decontam_index_add_file(ix, spec, &err), 0);
    assert_int_equal(decontam_index_build(ix, &err), 0);
    assert_string_equal(decontam_task_name(ix, 0), "piqa");
    assert_int_equal(decontam_task_items(ix, 0), 1838);
    print_message("piqa: %ld of 1838 items shorter than 8 words in both texts (not indexed)\n",
                  decontam_task_too_short(ix, 0));
    assert_true(decontam_task_too_short(ix, 0) > 0);
    decontam_index_free(ix);
}

static int read_ok(const char *spec, KilnErr *err) {
    Items it = {0};
    int rc = decontam_read_eval(spec, collect, &it, NULL, err);
    items_free(&it);
    return rc;
}

static void test_malformed(void **st) {
    (void)st;
    KilnErr err;
    char spec[4400];
    // a bad JSON line: the error names the file and the line
    const char *bad = "{\"text\": \"one two three\"}\n\n{\"text\": \"unterminated}\n";
    write_bytes(tmp("lambada_bad.jsonl"), bad, strlen(bad));
    assert_int_equal(read_ok(tmp("lambada_bad.jsonl"), &err), -1);
    char want[4400];
    snprintf(want, sizeof want, "%s:3: not a JSON object", tmp("lambada_bad.jsonl"));
    assert_non_null(strstr(err.msg, want));
    // a missing field names it
    const char *nofield = "{\"question\": \"q\"}\n";
    write_bytes(tmp("gsm8k_x.jsonl"), nofield, strlen(nofield));
    assert_int_equal(read_ok(tmp("gsm8k_x.jsonl"), &err), -1);
    assert_non_null(strstr(err.msg, ":1: no field 'answer'"));  // the task file's template names it
    // a label past the endings
    const char *lab = "{\"ind\": 1, \"ctx\": \"c\", \"endings\": [\"a\", \"b\"], \"label\": 2}\n";
    write_bytes(tmp("hs.jsonl"), lab, strlen(lab));
    snprintf(spec, sizeof spec, "hellaswag:%s", tmp("hs.jsonl"));
    assert_int_equal(read_ok(spec, &err), -1);
    assert_non_null(strstr(err.msg, ":1: label 2 but 2 choices"));
    // no format to be told from the name, or a missing file
    assert_int_equal(read_ok(tmp("hs.jsonl"), &err), -1);
    assert_non_null(strstr(err.msg, "cannot tell the format"));
    assert_int_equal(read_ok("lambada=/nonexistent/x.jsonl", &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/x.jsonl"));
    assert_int_equal(read_ok("jsonl:=x.jsonl", &err), -1);
    // the generic reader: fields joined, the id field used
    const char *gen = "{\"id\": \"a7\", \"q\": \"alpha beta\", \"a\": \"gamma\"}\n{\"q\": \"x\", \"a\": \"y\"}\n";
    write_bytes(tmp("mine.jsonl"), gen, strlen(gen));
    snprintf(spec, sizeof spec, "jsonl:q+a=%s", tmp("mine.jsonl"));
    Items it = read_items(spec);
    assert_int_equal(it.n, 2);
    assert_string_equal(it.v[0].id, "mine/a7");
    assert_string_equal(it.v[0].text, "alpha beta gamma");
    assert_string_equal(it.v[1].id, "mine/1");
    items_free(&it);
    // the same task twice is an error; named apart it is fine
    KilnDecontamIndex *ix;
    assert_int_equal(decontam_index_new(&ix, 13, 8, &err), 0);
    snprintf(spec, sizeof spec, "%s/eval/gsm8k/test_socratic.jsonl", data_dir);
    assert_int_equal(decontam_index_add_file(ix, spec_gsm, &err), 0);
    assert_int_equal(decontam_index_add_file(ix, spec, &err), -1);
    assert_non_null(strstr(err.msg, "given twice"));
    decontam_index_free(ix);
    // the stage refuses bad parameters
    const char *kv1[] = {"eval", spec_lb, "mode", "erase", NULL};
    assert_null(stage_new(kv1, &err));
    const char *kv2[] = {"eval", spec_lb, "n", "0", NULL};
    assert_null(stage_new(kv2, &err));
    const char *kv3[] = {"n", "13", NULL};
    assert_null(stage_new(kv3, &err));
    assert_non_null(strstr(err.msg, "no evaluation sets"));
}

static int fuzz_read(const char *path, void *ctx) {
    char spec[4400];
    snprintf(spec, sizeof spec, "%s:%s", (const char *)ctx, path);
    KilnErr err;
    KilnDecontamIndex *ix;
    if (decontam_index_new(&ix, 13, 8, &err)) return -1;
    int rc = decontam_index_add_file(ix, spec, &err);
    if (!rc) rc = decontam_index_build(ix, &err);
    if (!rc) {
        long hits = 0;
        decontam_scan(ix, path, strlen(path), count_hit, &hits);
    }
    decontam_index_free(ix);
    return rc;
}

static void test_fuzz(void **st) {
    (void)st;
    const char *fmts[] = {"hellaswag", "gsm8k", "piqa"};
    const char *files[] = {"eval/hellaswag/hellaswag_val.subset.jsonl", "eval/gsm8k/test.jsonl", "eval/piqa/valid.jsonl"};
    for (int f = 0; f < 3; f++) {
        char path[4400], *data;
        size_t len;
        KilnErr err;
        snprintf(path, sizeof path, "%s/%s", data_dir, files[f]);
        assert_int_equal(kiln_read_file(path, &data, &len, &err), 0);
        size_t cut = len < 12000 ? len : 12000;  // the first records are enough
        while (cut > 0 && data[cut - 1] != '\n') cut--;
        int errors = fuzz_mutants(data, cut, 300, tmp("mutant.jsonl"), 300, 5 + (uint64_t)f, fuzz_read, (void *)fmts[f]);
        print_message("fuzzed %s: 300 mutants, %d rejected\n", fmts[f], errors);
        assert_true(errors > 0);
        free(data);
    }
}

// ---------------------------------------------------------------- no plants, no matches
static void test_clean_corpus(void **st) {
    (void)st;
    KilnDecontamIndex *ix = std_index();
    const char *files[][2] = {{"pretrain/wikitext-2-raw/wiki.test.raw", "\n"},
                              {"pretrain/tinystories/TinyStories-train.head-part1.txt", "<|endoftext|>"},
                              {"pretrain/wikitext-2/valid.txt", "\n"}};
    long total = 0;
    for (int f = 0; f < 3; f++) {
        Paras p = read_paras(files[f][0], files[f][1], 1);
        long hits = 0;
        for (int i = 0; i < p.n; i++) {
            long h = 0;
            decontam_scan(ix, p.v[i], strlen(p.v[i]), count_hit, &h);
            if (h) print_message("%s paragraph %d: %ld n-gram hits: %.120s\n", files[f][0], i, h, p.v[i]);
            hits += h;
        }
        print_message("%s: %d documents, %ld n-gram hits\n", files[f][0], p.n, hits);
        total += hits;
        paras_free(&p);
    }
    assert_int_equal(total, 0);
    decontam_index_free(ix);
}

// Overlaps between the evaluation sets themselves: items of one set whose
// n-grams occur in another's (reported, not hidden; GSM8K test vs train and
// the HellaSwag items of one video are the known ones).
static void test_cross_overlap(void **st) {
    (void)st;
    KilnDecontamIndex *ix = std_index();
    const char *specs[] = {spec_hs, spec_lb, spec_gsm};
    unsigned char *mark = calloc((size_t)decontam_nitems(ix), 1);
    long cross[3][3] = {{0}};
    for (int s = 0; s < 3; s++) {
        Items it = read_items(specs[s]);
        for (int i = 0; i < it.n; i++) {
            memset(mark, 0, (size_t)decontam_nitems(ix));
            Marks m = {mark};
            decontam_scan(ix, it.v[i].text, it.v[i].len, mark_hit, &m);
            long self = decontam_item_find(ix, it.v[i].id);
            assert_true(self >= 0);
            assert_true(mark[self]);  // an item always finds itself
            int seen[3] = {0};
            for (long k = 0; k < decontam_nitems(ix); k++)
                if (mark[k] && k != self) seen[decontam_item_task(ix, k)] = 1;
            for (int t = 0; t < 3; t++) cross[s][t] += seen[t];
        }
        items_free(&it);
    }
    for (int s = 0; s < 3; s++)
        print_message("items of %s sharing an n-gram with another item of: hellaswag %ld, lambada %ld, gsm8k %ld\n",
                      decontam_task_name(ix, s), cross[s][0], cross[s][1], cross[s][2]);
    // between different sets: none
    for (int s = 0; s < 3; s++)
        for (int t = 0; t < 3; t++)
            if (s != t) assert_int_equal(cross[s][t], 0);
    free(mark);
    decontam_index_free(ix);
}

// ---------------------------------------------------------------- planted items
typedef struct {
    Items sets[3];
    Paras paras;
    int pick[3][50];
} Plants;

static void plants_load(Plants *p) {
    p->sets[0] = read_items(spec_hs);
    p->sets[1] = read_items(spec_lb);
    p->sets[2] = read_items(spec_gsm_q);  // GSM8K: the question alone
    p->paras = read_paras("pretrain/wikitext-2-raw/wiki.test.raw", "\n", 300);
    KilnRng r;
    kiln_rng_seed(&r, 2024);
    for (int s = 0; s < 3; s++)
        for (int k = 0; k < 50; k++) {
            int dup;
            do {  // 50 distinct items
                p->pick[s][k] = (int)(kiln_rng_u64(&r) % (uint64_t)p->sets[s].n);
                dup = 0;
                for (int j = 0; j < k; j++) dup |= p->pick[s][j] == p->pick[s][k];
            } while (dup);
        }
}

static void plants_free(Plants *p) {
    for (int s = 0; s < 3; s++) items_free(&p->sets[s]);
    paras_free(&p->paras);
}

// The planted item's id in the index (GSM8K questions were read as task gsm8kq).
static void index_id(const char *id, char *out, size_t cap) {
    if (!strncmp(id, "gsm8kq/", 7)) snprintf(out, cap, "gsm8k/%s", id + 7);
    else snprintf(out, cap, "%s", id);
}

// doc = paragraph with the perturbed item inserted at a word boundary
static char *plant(const char *para, const char *item, KilnRng *r, size_t *at, size_t *plen) {
    size_t n = strlen(para), pos = kiln_rng_u64(r) % (n + 1);
    while (pos < n && para[pos] != ' ') pos++;
    char *pert = perturb(item, r);
    size_t pl = strlen(pert);
    char *doc = malloc(n + pl + 3);
    memcpy(doc, para, pos);
    doc[pos] = ' ';
    memcpy(doc + pos + 1, pert, pl);
    doc[pos + 1 + pl] = ' ';
    memcpy(doc + pos + 2 + pl, para + pos, n - pos);
    doc[n + pl + 2] = 0;
    *at = pos + 1;
    *plen = pl;
    free(pert);
    return doc;
}

static void check_planted(const char *mode) {
    Plants p;
    plants_load(&p);
    void *stage = stage_std(mode, "200");
    KilnDecontamIndex *ix = std_index();
    unsigned char *allowed = calloc((size_t)decontam_nitems(ix), 1);
    KilnDoc d = {0};
    KilnScratch s = {0};
    KilnRng r;
    kiln_rng_seed(&r, 77);
    int dropped = 0, excised = 0, clean_kept = 0;
    const char *task_names[] = {"hellaswag", "lambada", "gsm8k"};
    for (int set = 0; set < 3; set++)
        for (int k = 0; k < 50; k++) {
            const Item *it = &p.sets[set].v[p.pick[set][k]];
            const char *para = p.paras.v[kiln_rng_u64(&r) % (uint64_t)p.paras.n];
            size_t at, plen;
            char *doc = plant(para, it->text, &r, &at, &plen);
            // items sharing an n-gram with this one may be reported too (HellaSwag
            // items of one video share sentences); nothing else may
            Marks m = {allowed};
            decontam_scan(ix, it->text, it->len, mark_hit, &m);
            const char *why = apply(stage, &d, &s, task_names[set], doc, strlen(doc));
            if (!strcmp(mode, "drop")) {
                assert_non_null(why);
                assert_string_equal(why, "contaminated");
                dropped++;
            } else if (why) {
                // a short paragraph: nothing of 200 characters is left beside the window
                assert_string_equal(why, "contaminated_remainder_too_short");
                dropped++;
            } else {
                excised++;
                // the item is gone: no n-gram of the index is left, and the text that
                // remains is the paragraph's, minus the planted words and margins
                long h = 0;
                assert_int_equal(decontam_scan(ix, d.text.data, d.text.len, count_hit, &h), 0);
                assert_true(d.text.len + plen <= strlen(doc));
                assert_true(utf8_valid(d.text.data, d.text.len));
                char probe[41];
                snprintf(probe, sizeof probe, "%s", doc + at + plen / 2);  // from the middle of the plant
                if (strlen(probe) == 40) assert_null(strstr(d.text.data, probe));
            }
            free(doc);
            // the same paragraph without the plant is kept as it is
            assert_null(apply(stage, &d, &s, task_names[set], para, strlen(para)));
            assert_string_equal(d.text.data, para);
            clean_kept++;
        }
    cJSON *rep = report(stage), *tasks = cJSON_GetObjectItem(rep, "tasks");
    for (int set = 0; set < 3; set++) {
        const cJSON *t = cJSON_GetObjectItem(tasks, task_names[set]);
        assert_non_null(t);
        for (int k = 0; k < 50; k++) {
            char id[320];
            index_id(p.sets[set].v[p.pick[set][k]].id, id, sizeof id);
            if (!id_in(t, id)) fail_msg("planted %s not reported", id);
        }
        const cJSON *x;
        int nfound = 0;
        cJSON_ArrayForEach(x, cJSON_GetObjectItem(t, "found_ids")) {
            long item = decontam_item_find(ix, x->valuestring);
            assert_true(item >= 0);
            if (!allowed[item]) fail_msg("%s reported but not planted", x->valuestring);
            nfound++;
        }
        assert_int_equal(cJSON_GetObjectItem(t, "found")->valueint, nfound);
        print_message("%s (%s): 50 planted, %d reported\n", task_names[set], mode, nfound);
        // per source: the 50 documents of this source matched
        const cJSON *src = cJSON_GetObjectItem(cJSON_GetObjectItem(t, "sources"), task_names[set]);
        assert_non_null(src);
        assert_int_equal(cJSON_GetObjectItem(src, "docs_matched")->valueint, 50);
    }
    assert_int_equal(cJSON_GetObjectItem(rep, "docs_matched")->valueint, 150);
    assert_int_equal(cJSON_GetObjectItem(rep, "docs_dropped")->valueint, dropped);
    assert_int_equal(cJSON_GetObjectItem(rep, "docs_excised")->valueint, excised);
    assert_int_equal(clean_kept, 150);
    print_message("%s: %d excised, %d dropped\n", mode, excised, dropped);
    if (!strcmp(mode, "excise")) assert_true(excised > 50);
    cJSON_Delete(rep);
    free(allowed);
    doc_free(&d);
    scratch_free(&s);
    decontam_index_free(ix);
    stage_find("decontaminate")->destroy(stage);
    plants_free(&p);
}

static void test_planted_excise(void **st) {
    (void)st;
    check_planted("excise");
}
static void test_planted_drop(void **st) {
    (void)st;
    check_planted("drop");
}

// Many threads on one stage: the counts and the items found are those of one thread.
static void test_threads(void **st) {
    (void)st;
    Plants p;
    plants_load(&p);
    int ndocs = 600;
    char **docs = calloc((size_t)ndocs, sizeof *docs);
    KilnRng r;
    kiln_rng_seed(&r, 5);
    for (int i = 0; i < ndocs; i++) {
        const char *para = p.paras.v[kiln_rng_u64(&r) % (uint64_t)p.paras.n];
        if (i % 2) {
            docs[i] = strdup(para);
            continue;
        }
        const Item *it = &p.sets[(i / 2) % 3].v[p.pick[(i / 2) % 3][(i / 6) % 50]];
        size_t at, plen;
        docs[i] = plant(para, it->text, &r, &at, &plen);
    }
    char *js[2];
    for (int threads = 1; threads <= 4; threads += 3) {
        void *stage = stage_std("excise", "200");
        long dropped = 0;
#pragma omp parallel num_threads(threads) reduction(+ : dropped)
        {
            KilnDoc d = {0};
            KilnScratch s = {0};
#pragma omp for schedule(dynamic, 7)
            for (int i = 0; i < ndocs; i++) dropped += apply(stage, &d, &s, i % 4 ? "wiki" : "web", docs[i], strlen(docs[i])) != NULL;
            doc_free(&d);
            scratch_free(&s);
        }
        cJSON *rep = report(stage);
        assert_int_equal(cJSON_GetObjectItem(rep, "docs_matched")->valueint, ndocs / 2);
        assert_int_equal(cJSON_GetObjectItem(rep, "docs_dropped")->valueint, dropped);
        cJSON_DeleteItemFromObject(rep, "index_seconds");
        js[threads > 1] = cJSON_PrintUnformatted(rep);
        cJSON_Delete(rep);
        stage_find("decontaminate")->destroy(stage);
    }
    assert_string_equal(js[0], js[1]);
    free(js[0]);
    free(js[1]);
    for (int i = 0; i < ndocs; i++) free(docs[i]);
    free(docs);
    plants_free(&p);
}

// ---------------------------------------------------------------- boundaries
// Word bounds as the index sees them (punctuation-only pieces are no words).
typedef struct {
    size_t start[4096], end[4096];
    int n;
} Bounds;
static void bounds_cb(void *ctx, const char *w, size_t len, size_t start, size_t end) {
    (void)w;
    (void)len;
    Bounds *b = ctx;
    if (b->n < 4096) {
        b->start[b->n] = start;
        b->end[b->n++] = end;
    }
}

// Words [from, from+count) of text (count < 0: to the end), as a new string.
static char *words_of(const char *text, int from, int count) {
    Bounds *b = calloc(1, sizeof *b);
    decontam_words(text, strlen(text), bounds_cb, b);
    int to = count < 0 ? b->n : from + count;
    assert_true(from >= 0 && to <= b->n && from < to);
    char *r = strndup(text + b->start[from], b->end[to - 1] - b->start[from]);
    free(b);
    return r;
}

static int nwords(const char *text) {
    Bounds *b = calloc(1, sizeof *b);
    int n = (int)decontam_words(text, strlen(text), bounds_cb, b);
    free(b);
    return n;
}

static char *first_words(const char *para, int words) { return words_of(para, 0, words); }

// A plain stage over one custom eval file (one item per line of `texts`).
static void *stage_custom(const char *const *texts, int n, const char *extra_k, const char *extra_v,
                          const char *margin, const char *min_words) {
    KilnBuf b = {0};
    for (int i = 0; i < n; i++) {
        kbuf_puts(&b, "{\"text\": \"");
        kbuf_json_escape(&b, texts[i], strlen(texts[i]));
        kbuf_puts(&b, "\"}\n");
    }
    write_bytes(tmp("custom.jsonl"), b.data, b.len);
    kbuf_free(&b);
    char spec[4400];
    snprintf(spec, sizeof spec, "custom=jsonl:text=%s", tmp("custom.jsonl"));
    const char *kv[] = {"eval", spec, "margin", margin, "min_item_words", min_words, extra_k, extra_v, NULL};
    KilnErr err;
    void *s = stage_new(kv, &err);
    if (!s) fail_msg("%s", err.msg);
    return s;
}

static void test_item_length_boundary(void **st) {
    (void)st;
    Paras p = read_paras("pretrain/wikitext-2-raw/wiki.test.raw", "\n", 1500);
    char *w13 = first_words(p.v[0], 13), *w12 = first_words(p.v[1], 12), *w12b = first_words(p.v[2], 12);
    // exactly n words: one n-gram; 12 words with min_item_words 12: one 12-gram;
    // 12 words with min_item_words 13: not indexed
    const char *texts[] = {w13, w12};
    KilnDoc d = {0};
    KilnScratch s = {0};
    const KilnStageDef *def = stage_find("decontaminate");
    for (int mw = 12; mw <= 13; mw++) {
        char mws[16];
        snprintf(mws, sizeof mws, "%d", mw);
        void *stage = stage_custom(texts, 2, "mode", "drop", "200", mws);
        assert_string_equal(apply(stage, &d, &s, "wiki", p.v[0], strlen(p.v[0])), "contaminated");
        const char *why = apply(stage, &d, &s, "wiki", p.v[1], strlen(p.v[1]));
        if (mw == 12) assert_string_equal(why, "contaminated");
        else assert_null(why);
        // the first 12 words of the 13-word item are not a match
        char *w12a = first_words(p.v[0], 12);
        assert_null(apply(stage, &d, &s, "wiki", w12a, strlen(w12a)));
        free(w12a);
        // nor is the 13-word item with one word changed
        char *chg = strdup(w13);
        chg[strlen(chg) - 1] = 'Q';
        assert_null(apply(stage, &d, &s, "wiki", chg, strlen(chg)));
        free(chg);
        cJSON *rep = report(stage), *t = cJSON_GetObjectItem(cJSON_GetObjectItem(rep, "tasks"), "custom");
        assert_int_equal(cJSON_GetObjectItem(t, "items")->valueint, 2);
        assert_int_equal(cJSON_GetObjectItem(t, "items_too_short")->valueint, mw == 13);
        assert_int_equal(cJSON_GetObjectItem(t, "found")->valueint, mw == 12 ? 2 : 1);
        assert_true(id_in(t, "custom/0"));
        cJSON_Delete(rep);
        def->destroy(stage);
    }
    // a 12-word item inside a longer sentence is found (it is a whole-item n-gram)
    const char *t2[] = {w12b};
    void *stage = stage_custom(t2, 1, "mode", "drop", "200", "8");
    assert_string_equal(apply(stage, &d, &s, "wiki", p.v[2], strlen(p.v[2])), "contaminated");
    def->destroy(stage);
    free(w13);
    free(w12);
    free(w12b);
    doc_free(&d);
    scratch_free(&s);
    paras_free(&p);
}

// An exact piece of n code points of real text (cut at a space, padded with
// letters of the text so its trimmed length is exact).
static char *piece_of(const char *para, size_t chars) {
    char *o = malloc(chars + 1);
    size_t k = 0;
    for (const char *q = para; k < chars; q++) {
        if (!*q) q = para;
        if ((unsigned char)*q >= 0x80) continue;  // ASCII only: bytes = code points
        o[k++] = *q;
    }
    o[0] = 'A';
    o[chars - 1] = 'z';
    o[chars] = 0;
    return o;
}

static void test_pieces_boundary(void **st) {
    (void)st;
    Paras p = read_paras("pretrain/wikitext-2-raw/wiki.test.raw", "\n", 1500);
    Items lb = read_items(spec_lb);
    const KilnStageDef *def = stage_find("decontaminate");
    KilnDoc d = {0};
    KilnScratch s = {0};
    const char *texts[] = {lb.v[5].text};
    void *stage = stage_custom(texts, 1, "max_splits", "10", "0", "8");
    char *p200 = piece_of(p.v[0], 200), *p199 = piece_of(p.v[0], 199);
    // pieces of exactly min_chars (200) are kept, 199 discarded; margin 0 here
    for (int npieces = 2; npieces <= 11; npieces++) {
        KilnBuf doc = {0};
        for (int k = 0; k < npieces; k++) {
            if (k) {
                kbuf_puts(&doc, " ");
                kbuf_puts(&doc, lb.v[5].text);
                kbuf_puts(&doc, " ");
            }
            kbuf_puts(&doc, k == 1 ? p199 : p200);
        }
        const char *why = apply(stage, &d, &s, "wiki", doc.data, doc.len);
        if (npieces <= 10) {
            assert_null(why);
            // the 199-character piece is gone, the others remain, joined by blank lines
            assert_int_equal(d.text.len, (size_t)(npieces - 1) * 200 + (size_t)(npieces - 2) * 2);
            assert_null(strstr(d.text.data, p199));
        } else {
            assert_string_equal(why, "contaminated_too_many_pieces");
        }
        kbuf_free(&doc);
    }
    // one 199-character piece and nothing else: dropped as too short
    KilnBuf doc = {0};
    kbuf_puts(&doc, p199);
    kbuf_puts(&doc, " ");
    kbuf_puts(&doc, lb.v[5].text);
    assert_string_equal(apply(stage, &d, &s, "wiki", doc.data, doc.len), "contaminated_remainder_too_short");
    def->destroy(stage);

    // margins: two plants closer than 2 x 200 characters merge into one window (2
    // pieces); further apart they are two windows (3 pieces)
    stage = stage_custom(texts, 1, "max_splits", "2", "200", "8");
    for (int gap = 300; gap <= 500; gap += 200) {
        char *mid = piece_of(p.v[1], (size_t)gap);
        kbuf_clear(&doc);
        kbuf_puts(&doc, p.v[2]);
        kbuf_puts(&doc, " ");
        kbuf_puts(&doc, lb.v[5].text);
        kbuf_puts(&doc, " ");
        kbuf_puts(&doc, mid);
        kbuf_puts(&doc, " ");
        kbuf_puts(&doc, lb.v[5].text);
        kbuf_puts(&doc, " ");
        kbuf_puts(&doc, p.v[3]);
        const char *why = apply(stage, &d, &s, "wiki", doc.data, doc.len);
        if (gap == 300) {
            assert_null(why);  // 2 pieces: the paragraphs around, minus 200 characters each
            assert_null(strstr(d.text.data, mid + 50));
            size_t want = strlen(p.v[2]) + strlen(p.v[3]) - 400;
            assert_true(d.text.len >= want - 40 && d.text.len <= want + 2);  // cut at a space
        } else {
            assert_string_equal(why, "contaminated_too_many_pieces");  // 3 pieces > 2
        }
        free(mid);
    }
    // a plant at the very start and the very end: windows stop at the edges
    kbuf_clear(&doc);
    kbuf_puts(&doc, lb.v[5].text);
    kbuf_puts(&doc, " ");
    kbuf_puts(&doc, p.v[4]);
    kbuf_puts(&doc, " ");
    kbuf_puts(&doc, lb.v[5].text);
    assert_null(apply(stage, &d, &s, "wiki", doc.data, doc.len));
    assert_true(d.text.len < strlen(p.v[4]) - 360);
    assert_non_null(strstr(p.v[4], d.text.data));
    def->destroy(stage);
    kbuf_free(&doc);

    // an item cut across two documents: each half of >= 13 words is found on
    // its own; 12 words on each side of the cut are not (a per-document scan)
    int pick = 7;
    while (nwords(lb.v[pick].text) < 60) pick++;
    const char *item = lb.v[pick].text;
    int nw = nwords(item), cut = nw / 2;
    stage = stage_custom(&item, 1, "mode", "drop", "200", "8");
    char *a = words_of(item, 0, cut), *b = words_of(item, cut, -1);
    assert_string_equal(apply(stage, &d, &s, "wiki", a, strlen(a)), "contaminated");
    assert_string_equal(apply(stage, &d, &s, "wiki", b, strlen(b)), "contaminated");
    char *before12 = words_of(item, cut - 12, 12), *after12 = words_of(item, cut, 12);
    assert_null(apply(stage, &d, &s, "wiki", before12, strlen(before12)));
    assert_null(apply(stage, &d, &s, "wiki", after12, strlen(after12)));
    // together in one document they match
    KilnBuf both = {0};
    kbuf_puts(&both, before12);
    kbuf_puts(&both, "\n");
    kbuf_puts(&both, after12);
    assert_string_equal(apply(stage, &d, &s, "wiki", both.data, both.len), "contaminated");
    kbuf_free(&both);
    free(a);
    free(b);
    free(before12);
    free(after12);
    def->destroy(stage);

    free(p200);
    free(p199);
    items_free(&lb);
    paras_free(&p);
    doc_free(&d);
    scratch_free(&s);
}

// Excision in text with multibyte characters never cuts one.
static void test_utf8_margins(void **st) {
    (void)st;
    const char *item = "the quick brown fox jumps over the lazy dog near the old river bank today";
    void *stage = stage_custom(&item, 1, "min_chars", "1", "7", "8");
    KilnDoc d = {0};
    KilnScratch s = {0};
    KilnBuf doc = {0};
    for (int i = 0; i < 40; i++) kbuf_puts(&doc, "\xC3\xA9t\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E");  // no spaces
    kbuf_puts(&doc, " The QUICK brown fox, jumps over the lazy dog near the old river bank today! ");
    for (int i = 0; i < 40; i++) kbuf_puts(&doc, "\xF0\x9D\x84\x9E\xC3\xA9");
    assert_null(apply(stage, &d, &s, "x", doc.data, doc.len));
    assert_true(utf8_valid(d.text.data, d.text.len));
    assert_null(strstr(d.text.data, "fox"));
    assert_true(d.text.len < doc.len - 75);
    kbuf_free(&doc);
    doc_free(&d);
    scratch_free(&s);
    stage_find("decontaminate")->destroy(stage);
}

// ---------------------------------------------------------------- throughput
static void test_throughput(void **st) {
    (void)st;
    double t0 = kiln_now();
    void *stage = stage_std("excise", "200");
    double build = kiln_now() - t0;
    cJSON *rep = report(stage);
    print_message("index of hellaswag+lambada+gsm8k test: %ld n-grams, %.1f MiB, built in %.3f s\n",
                  (long)cJSON_GetObjectItem(rep, "index_ngrams")->valuedouble,
                  cJSON_GetObjectItem(rep, "index_bytes")->valuedouble / 1048576.0, build);
    cJSON_Delete(rep);
    Paras docs[2] = {read_paras("pretrain/wikitext-2-raw/wiki.test.raw", "\n", 1),
                     read_paras("pretrain/tinystories/TinyStories-train.head-part1.txt", "<|endoftext|>", 1)};
    KilnDoc d = {0};
    KilnScratch s = {0};
    double bytes = 0, best = 1e9;
    for (int rep_i = 0; rep_i < 3; rep_i++) {
        bytes = 0;
        double t = kiln_now();
        for (int f = 0; f < 2; f++)
            for (int i = 0; i < docs[f].n; i++) {
                size_t n = strlen(docs[f].v[i]);
                assert_null(apply(stage, &d, &s, "x", docs[f].v[i], n));
                bytes += (double)n;
            }
        t = kiln_now() - t;
        best = t < best ? t : best;
    }
    print_message("decontaminate on one thread: %.1f MB in %.3f s = %.0f MB/s (apply, copy-in included)\n",
                  bytes / 1e6, best, bytes / 1e6 / best);
    for (int f = 0; f < 2; f++) paras_free(&docs[f]);
    doc_free(&d);
    scratch_free(&s);
    stage_find("decontaminate")->destroy(stage);
}

int main(int argc, char **argv) {
    char tasks[4200];  // benchmarks are read through their task files
    snprintf(tasks, sizeof tasks, "%s/tasks", argc > 1 ? argv[1] : ".");
    setenv("KILN_TASKS", tasks, 1);
    if (test_data_dir(argc, argv, NULL, data_dir, sizeof data_dir, "eval/lambada/lambada_test.jsonl", NULL))
        return TEST_SKIP;
    snprintf(spec_hs, sizeof spec_hs, "%s/eval/hellaswag/hellaswag_val.subset.jsonl", data_dir);
    snprintf(spec_lb, sizeof spec_lb, "%s/eval/lambada/lambada_test.jsonl", data_dir);
    snprintf(spec_gsm, sizeof spec_gsm, "%s/eval/gsm8k/test.jsonl", data_dir);
    snprintf(spec_gsm_q, sizeof spec_gsm_q, "gsm8kq=jsonl:question=%s/eval/gsm8k/test.jsonl", data_dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words),          cmocka_unit_test(test_readers),
        cmocka_unit_test(test_malformed),      cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_clean_corpus),   cmocka_unit_test(test_cross_overlap),
        cmocka_unit_test(test_planted_excise), cmocka_unit_test(test_planted_drop), cmocka_unit_test(test_threads),
        cmocka_unit_test(test_item_length_boundary), cmocka_unit_test(test_pieces_boundary),
        cmocka_unit_test(test_utf8_margins),   cmocka_unit_test(test_throughput),
    };
    return TEST_RUN("data_decontam", tests);
}
