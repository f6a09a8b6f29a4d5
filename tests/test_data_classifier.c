// test_data_classifier: the fastText-style classifier on real data: toxicity
// (Davidson et al. tweets), quality (WikiText paragraphs against tweets and
// kernel source), features at their boundaries, save/load, determinism, model
// file fuzzing, the `classifier` stage, the JSONL split and prediction behind
// `kiln data classifier`, and that command.
#include "kiln/classifier.h"
#include "kiln/data.h"
#include "testutil.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sys/wait.h>

// ---------------------------------------------------------------- data
typedef struct {
    char **text;
    int *cls;
    int n, cap;
} Corpus;

static Corpus tweets, wiki, kernel;  // tweets.cls: Davidson's class (0 hate, 1 offensive, 2 neither)
static char data_dir[1024];

static void corpus_add(Corpus *c, const char *s, size_t n, int cls) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        c->text = realloc(c->text, sizeof(char *) * (size_t)c->cap);
        c->cls = realloc(c->cls, sizeof(int) * (size_t)c->cap);
    }
    c->text[c->n] = strndup(s, n);
    c->cls[c->n++] = cls;
}

static void corpus_free(Corpus *c) {
    for (int i = 0; i < c->n; i++) free(c->text[i]);
    free(c->text);
    free(c->cls);
}

// One RFC 4180 CSV record from *p: fields into f[0..max) (malloc'd), quoted
// fields may hold commas, doubled quotes and newlines. Returns the field count,
// 0 at the end.
static int csv_record(const char **p, const char *end, char **f, int max) {
    if (*p >= end) return 0;
    int nf = 0;
    KilnBuf b = {0};
    const char *s = *p;
    for (;;) {
        kbuf_clear(&b);
        kbuf_puts(&b, "");
        if (s < end && *s == '"') {
            for (s++; s < end; s++) {
                if (*s == '"' && s + 1 < end && s[1] == '"') kbuf_putc(&b, *s++);
                else if (*s == '"') break;
                else kbuf_putc(&b, *s);
            }
            s++;  // closing quote
        }
        while (s < end && *s != ',' && *s != '\n') {
            if (*s != '\r') kbuf_putc(&b, *s);
            s++;
        }
        if (nf < max) f[nf++] = strndup(b.data, b.len);
        if (s >= end || *s == '\n') break;
        s++;  // comma
    }
    *p = s < end ? s + 1 : end;
    kbuf_free(&b);
    return nf;
}

static int load_davidson(void) {
    char path[1200], *data;
    size_t len;
    KilnErr err;
    snprintf(path, sizeof path, "%s/toxicity/davidson-hate-offensive/labeled_data.csv", data_dir);
    if (kiln_read_file(path, &data, &len, &err)) return -1;
    const char *p = data, *end = data + len;
    char *f[8];
    for (int n, rec = 0; (n = csv_record(&p, end, f, 8)) > 0; rec++) {
        if (rec > 0 && n == 7) corpus_add(&tweets, f[6], strlen(f[6]), atoi(f[5]));
        for (int i = 0; i < n; i++) free(f[i]);
    }
    free(data);
    return 0;
}

// WikiText paragraphs (not headings or short lines), and kernel source cut into
// 12-line pieces.
static int load_text(void) {
    char path[1200], *data;
    size_t len;
    KilnErr err;
    snprintf(path, sizeof path, "%s/pretrain/wikitext-2-raw/wiki.test.raw", data_dir);
    if (kiln_read_file(path, &data, &len, &err)) return -1;
    for (char *s = data, *e; s < data + len; s = e + 1) {
        e = memchr(s, '\n', (size_t)(data + len - s));
        if (!e) e = data + len;
        if (e - s > 200 && s[1] != '=') corpus_add(&wiki, s, (size_t)(e - s), 0);
    }
    free(data);
    snprintf(path, sizeof path, "%s/pretrain/code/linux-kernel.txt", data_dir);
    if (kiln_read_file(path, &data, &len, &err)) return -1;
    int lines = 0;
    for (char *s = data, *p = data; p < data + len; p++)
        if (*p == '\n' && ++lines % 12 == 0) {
            corpus_add(&kernel, s, (size_t)(p - s), 0);
            s = p + 1;
        }
    free(data);
    return 0;
}

static int is_valid(int i) { return kiln_hash64((uint64_t)i ^ 0xabcdef) % 10 == 0; }  // 10% held out

// Toxic (hate or offensive) = label 0, neither = label 1.
static void davidson_sets(KilnClsSet *tr, KilnClsSet *va, const KilnClsOpts *o) {
    KilnErr err;
    clsset_init(tr, o->word_ngrams, o->buckets);
    clsset_init(va, o->word_ngrams, o->buckets);
    for (int i = 0; i < tweets.n; i++)
        assert_int_equal(clsset_add(is_valid(i) ? va : tr, tweets.text[i], strlen(tweets.text[i]), tweets.cls[i] == 2, &err), 0);
}

static const char *const TOX_LABELS[] = {"toxic", "clean"};

// ---------------------------------------------------------------- features
static size_t feats(const char *s, int ngrams, uint32_t *out) {
    return classifier_features(s, strlen(s), ngrams, 1u << 21, out, 64);
}

static void test_features(void **state) {
    uint32_t a[64], b[64];
    // every text ends with fastText's </s>; a newline is one too, and a final
    // newline is not doubled
    assert_int_equal(feats("", 2, a), 1);
    assert_int_equal(feats(" \t\r ", 2, a), 1);
    uint32_t eos = a[0];
    assert_int_equal(feats("\n", 2, a), 1);
    assert_int_equal(a[0], eos);
    assert_int_equal(feats("\n\n", 1, a), 2);
    assert_int_equal(feats("x\n", 1, a), 2);
    assert_int_equal(feats("x\n  ", 1, a), 2);
    assert_int_equal(feats("x\ny", 1, a), 4);
    assert_int_equal(a[1], eos);
    assert_int_equal(a[3], eos);
    // three tokens + </s>: 4 unigrams + 3 bigrams; with wordNgrams 3, 2 trigrams more
    assert_int_equal(feats("the cat sat", 1, a), 4);
    assert_int_equal(feats("the cat sat", 2, a), 7);
    assert_int_equal(feats("the cat sat", 3, a), 9);
    assert_int_equal(feats("one", 8, a), 3);
    // lowercased, ASCII and beyond; spaces, tabs and CR separate
    assert_int_equal(feats("Hello WORLD", 2, a), 5);
    feats("hello\t\rworld", 2, b);
    assert_memory_equal(a, b, 5 * sizeof(uint32_t));
    feats("\xc3\x89" "COLE \xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91", 2, a);  // ÉCOLE ΣΟΦΙΑ
    feats("\xc3\xa9" "cole \xcf\x83\xce\xbf\xcf\x86\xce\xb9\xce\xb1", 2, b);    // école σοφια
    assert_memory_equal(a, b, 5 * sizeof(uint32_t));
    // punctuation runs are tokens of their own: "don ' t !!" = 4 tokens
    assert_int_equal(feats("don't!!", 1, a), 5);
    assert_int_equal(feats("@user: #tag", 1, a), 6);
    // bigrams are ordered: "a b" and "b a" share unigrams, not the bigram
    feats("cat dog", 2, a);
    feats("dog cat", 2, b);
    assert_int_equal(a[0], b[1]);
    assert_int_equal(a[1], b[0]);
    assert_int_not_equal(a[2], b[2]);
    // the bucket range holds
    size_t n = classifier_features("a b c d e f g", 13, 7, 97, a, 64);
    assert_int_equal(n, 8 + 7 + 6 + 5 + 4 + 3 + 2);
    for (size_t i = 0; i < n; i++) assert_true(a[i] < 97);
    // invalid UTF-8 does not stop the tokenizer
    assert_int_equal(feats("ab\xff\xfe cd", 1, a), 3);
}

static void test_opts(void **state) {
    KilnClsOpts o;
    KilnErr err;
    classifier_opts_default(&o);
    assert_int_equal(classifier_opts_check(&o, &err), 0);
    o.word_ngrams = KILN_CLS_MAX_NGRAMS + 1;
    assert_int_equal(classifier_opts_check(&o, &err), -1);
    assert_non_null(strstr(err.msg, "wordNgrams"));
    classifier_opts_default(&o);
    o.lr = 0;
    assert_int_equal(classifier_opts_check(&o, &err), -1);
    classifier_opts_default(&o);
    o.buckets = KILN_CLS_MAX_BUCKETS + 1;
    assert_int_equal(classifier_opts_check(&o, &err), -1);
    // a set hashed differently from the options is refused
    classifier_opts_default(&o);
    KilnClsSet s;
    clsset_init(&s, 3, o.buckets);
    assert_int_equal(clsset_add(&s, "x y", 3, 0, &err), 0);
    assert_int_equal(clsset_add(&s, "z", 1, 1, &err), 0);
    KilnClassifier *m;
    assert_int_equal(classifier_train(&m, &o, TOX_LABELS, 2, &s, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "wordNgrams"));
    // no examples: an error, not an empty model
    KilnClsSet empty;
    clsset_init(&empty, 2, o.buckets);
    assert_int_equal(classifier_train(&m, &o, TOX_LABELS, 2, &empty, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "no training examples"));
    // a label outside the label list is refused
    s.word_ngrams = 2;
    s.label[1] = 2;
    assert_int_equal(classifier_train(&m, &o, TOX_LABELS, 2, &s, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "label 2"));
    clsset_free(&s);
}

// ---------------------------------------------------------------- real tasks
static void test_davidson_toxicity(void **state) {
    KilnClsOpts o;
    KilnErr err;
    classifier_opts_default(&o);
    KilnClsSet tr, va;
    davidson_sets(&tr, &va, &o);
    KilnClassifier *m;
    KilnClsTrainStats st;
    assert_int_equal(classifier_train(&m, &o, TOX_LABELS, 2, &tr, &st, &err), 0);
    KilnClsMetrics v;
    assert_int_equal(classifier_eval(m, &va, 0, &v, &err), 0);
    long toxic = v.tp + v.fn;
    print_message("davidson: %zu train / %ld held out (%.1f%% toxic), %.0f words/s\n", tr.n, v.n, 100.0 * toxic / v.n,
                  st.tokens_per_s);
    print_message("held out: loss %.4f accuracy %.4f precision %.4f recall %.4f F1 %.4f AUC %.4f\n", v.loss, v.accuracy,
                  v.precision, v.recall, v.f1, v.auc);
    assert_true(v.n > 1500);
    // majority class ~83%: accuracy must clear it well, and F1/AUC must be real
    assert_true(v.accuracy >= 0.93);
    assert_true(v.f1 >= 0.95);
    assert_true(v.auc >= 0.95);
    // the confusion counts agree with the rates
    assert_int_equal(v.tp + v.fp + v.fn + v.tn, v.n);
    assert_true(fabs(v.accuracy - (double)(v.tp + v.tn) / v.n) < 1e-12);
    classifier_free(m);
    clsset_free(&tr);
    clsset_free(&va);
}

static void test_quality(void **state) {
    KilnClsOpts o;
    KilnErr err;
    classifier_opts_default(&o);
    KilnClsSet tr, va;
    clsset_init(&tr, o.word_ngrams, o.buckets);
    clsset_init(&va, o.word_ngrams, o.buckets);
    // hq: wiki paragraphs; lq: as many tweets and kernel pieces, half each
    int n = wiki.n;
    for (int i = 0; i < n; i++) {
        const char *lq = i % 2 ? tweets.text[i * 7 % tweets.n] : kernel.text[i % kernel.n];
        KilnClsSet *to = is_valid(i) ? &va : &tr;
        assert_int_equal(clsset_add(to, wiki.text[i], strlen(wiki.text[i]), 0, &err), 0);
        assert_int_equal(clsset_add(to, lq, strlen(lq), 1, &err), 0);
    }
    const char *labels[] = {"hq", "lq"};
    KilnClassifier *m;
    assert_int_equal(classifier_train(&m, &o, labels, 2, &tr, NULL, &err), 0);
    KilnClsMetrics v;
    assert_int_equal(classifier_eval(m, &va, 0, &v, &err), 0);
    print_message("quality: %zu train / %ld held out: accuracy %.4f F1 %.4f AUC %.4f\n", tr.n, v.n, v.accuracy, v.f1, v.auc);
    assert_true(v.n > 300);
    assert_true(v.accuracy >= 0.98);
    assert_true(v.auc >= 0.995);
    classifier_free(m);
    clsset_free(&tr);
    clsset_free(&va);
}

// Three labels (hate / offensive / neither) through softmax: far above chance
// and above the majority class.
static void test_softmax_three_labels(void **state) {
    KilnClsOpts o;
    KilnErr err;
    classifier_opts_default(&o);
    KilnClsSet tr, va;
    clsset_init(&tr, o.word_ngrams, o.buckets);
    clsset_init(&va, o.word_ngrams, o.buckets);
    long major = 0, nva = 0;
    for (int i = 0; i < tweets.n; i++) {
        assert_int_equal(clsset_add(is_valid(i) ? &va : &tr, tweets.text[i], strlen(tweets.text[i]), tweets.cls[i], &err), 0);
        if (is_valid(i)) nva++, major += tweets.cls[i] == 1;
    }
    const char *labels[] = {"hate", "offensive", "neither"};
    KilnClassifier *m;
    assert_int_equal(classifier_train(&m, &o, labels, 3, &tr, NULL, &err), 0);
    KilnClsMetrics v;
    assert_int_equal(classifier_eval(m, &va, 0, &v, &err), 0);
    print_message("3 labels: accuracy %.4f (majority %.4f)\n", v.accuracy, (double)major / nva);
    assert_true(v.accuracy >= (double)major / nva + 0.05);
    // probabilities sum to 1
    float p[3];
    classifier_predict(m, tweets.text[0], strlen(tweets.text[0]), p);
    assert_float_equal(p[0] + p[1] + p[2], 1.0, 1e-5);
    classifier_free(m);
    clsset_free(&tr);
    clsset_free(&va);
}

// ---------------------------------------------------------------- files
static KilnClassifier *train_small(uint64_t seed, long buckets) {
    KilnClsOpts o;
    KilnErr err;
    classifier_opts_default(&o);
    o.seed = seed;
    o.buckets = buckets;
    KilnClsSet tr, va;
    davidson_sets(&tr, &va, &o);
    KilnClassifier *m;
    assert_int_equal(classifier_train(&m, &o, TOX_LABELS, 2, &tr, NULL, &err), 0);
    clsset_free(&tr);
    clsset_free(&va);
    return m;
}

static void test_roundtrip_determinism(void **state) {
    KilnErr err;
    KilnClassifier *a = train_small(7, 1L << 21), *b = train_small(7, 1L << 21), *c = train_small(8, 1L << 21);
    assert_int_equal(classifier_save(a, tmp("a.kcls"), &err), 0);
    assert_int_equal(classifier_save(b, tmp("b.kcls"), &err), 0);
    assert_int_equal(classifier_save(c, tmp("c.kcls"), &err), 0);
    char *da, *db, *dc;
    size_t la, lb, lc;
    assert_int_equal(kiln_read_file(tmp("a.kcls"), &da, &la, &err), 0);
    assert_int_equal(kiln_read_file(tmp("b.kcls"), &db, &lb, &err), 0);
    assert_int_equal(kiln_read_file(tmp("c.kcls"), &dc, &lc, &err), 0);
    // same seed: the same bytes; another seed: other weights, same shape
    assert_int_equal(la, lb);
    assert_memory_equal(da, db, la);
    assert_int_equal(la, lc);
    assert_true(memcmp(da, dc, la) != 0);
    // stored rows only: far smaller than the 2^21 x 32 table
    print_message("model file: %zu bytes, %ld rows\n", la, classifier_rows(a));
    assert_true(la < (size_t)classifier_rows(a) * 33 * 4 + 4096);
    // a loaded model predicts exactly what the trained one did
    KilnClassifier *l;
    assert_int_equal(classifier_load(&l, tmp("a.kcls"), &err), 0);
    assert_int_equal(classifier_nlabels(l), 2);
    assert_string_equal(classifier_label(l, 0), "toxic");
    assert_string_equal(classifier_label(l, 1), "clean");
    assert_int_equal(classifier_find_label(l, "clean"), 1);
    assert_int_equal(classifier_find_label(l, "hq"), -1);
    for (int i = 0; i < tweets.n; i += 7) {
        float p[2], q[2];
        int x = classifier_predict(a, tweets.text[i], strlen(tweets.text[i]), p);
        int y = classifier_predict(l, tweets.text[i], strlen(tweets.text[i]), q);
        assert_int_equal(x, y);
        assert_memory_equal(p, q, sizeof p);
        assert_float_equal(p[0] + p[1], 1.0, 1e-6);
    }
    // an empty text is its </s> alone, like a lone newline; predicting from
    // the hashed features gives the same as from the text
    float p[2], q[2];
    classifier_predict(l, "", 0, p);
    classifier_predict(l, " \r\n ", 4, q);
    assert_memory_equal(p, q, sizeof p);
    uint32_t f[512];
    for (int i = 0; i < 50; i++) {
        const char *t = tweets.text[i];
        size_t n = classifier_features(t, strlen(t), 2, 1u << 21, f, 512);
        assert_true(n <= 512);
        classifier_predict(l, t, strlen(t), p);
        classifier_predict_feats(l, f, n, q);
        assert_memory_equal(p, q, sizeof p);
    }
    // saving again gives the same bytes
    assert_int_equal(classifier_save(l, tmp("l.kcls"), &err), 0);
    char *dl;
    size_t ll;
    assert_int_equal(kiln_read_file(tmp("l.kcls"), &dl, &ll, &err), 0);
    assert_int_equal(ll, la);
    assert_memory_equal(da, dl, la);
    free(da), free(db), free(dc), free(dl);
    classifier_free(a), classifier_free(b), classifier_free(c), classifier_free(l);
}

static void expect_load_error(const char *path, const char *want) {
    KilnClassifier *m = NULL;
    KilnErr err = {{0}};
    assert_int_equal(classifier_load(&m, path, &err), -1);
    assert_null(m);
    if (!strstr(err.msg, path) || !strstr(err.msg, want)) fail_msg("error '%s' lacks '%s' or the path", err.msg, want);
}

static int load_reader(const char *path, void *ctx) {
    KilnClassifier *m;
    KilnErr err;
    if (classifier_load(&m, path, &err)) {
        assert_non_null(strstr(err.msg, path));
        return -1;
    }
    float p[2];
    classifier_predict(m, "some text", 9, p);
    classifier_free(m);
    return 0;
}

static void test_corrupt_files(void **state) {
    KilnErr err;
    KilnClassifier *m = train_small(3, 4096);
    assert_int_equal(classifier_save(m, tmp("s.kcls"), &err), 0);
    classifier_free(m);
    char *d;
    size_t n;
    assert_int_equal(kiln_read_file(tmp("s.kcls"), &d, &n, &err), 0);
    write_bytes(tmp("t.kcls"), d, n - 1);
    expect_load_error(tmp("t.kcls"), "truncated");
    write_bytes(tmp("t.kcls"), d, 20);
    expect_load_error(tmp("t.kcls"), "bad magic");
    write_bytes(tmp("t.kcls"), "", 0);
    expect_load_error(tmp("t.kcls"), "bad magic");
    d[n / 2] ^= 1;  // one bit in the weights
    write_bytes(tmp("t.kcls"), d, n);
    expect_load_error(tmp("t.kcls"), "checksum");
    d[n / 2] ^= 1;
    d[8] = 2;  // version
    write_bytes(tmp("t.kcls"), d, n);
    expect_load_error(tmp("t.kcls"), "version");
    d[8] = 1;
    expect_load_error(tmp("missing.kcls"), "");
    int refused = fuzz_mutants(d, n, 64, tmp("f.kcls"), 600, 11, load_reader, NULL);
    print_message("fuzzed %zu-byte model: 600 mutants, %d refused\n", n, refused);
    assert_true(refused >= 590);  // the rest are no-op mutants (same byte, full length)
    free(d);
}

// ---------------------------------------------------------------- the stage
static const KilnStageDef *stage(void) {
    const KilnStageDef *def = stage_find("classifier");
    assert_non_null(def);
    assert_non_null(def->apply);
    return def;
}

#define make_stage(kv, seed, err) test_stage_new(stage(), kv, seed, err)

static const char *apply(void *st, const char *text, const char *id) {
    return test_apply(stage(), st, NULL, id, text, strlen(text), NULL, NULL);
}

static void test_stage_threshold(void **state) {
    KilnErr err;
    KilnClassifier *m = train_small(5, 1L << 21);
    assert_int_equal(classifier_save(m, tmp("st.kcls"), &err), 0);
    // the boundary: a threshold equal to the document's probability keeps it,
    // the next float above drops it
    const char *t = tweets.text[3];
    float p[2];
    classifier_predict(m, t, strlen(t), p);
    char thr[64], above[64];
    snprintf(thr, sizeof thr, "%.17g", (double)p[0]);
    snprintf(above, sizeof above, "%.17g", nextafter((double)p[0], 2.0));
    const char *at[] = {"model", tmp("st.kcls"), "label", "toxic", "threshold", thr, NULL};
    const char *up[] = {"model", tmp("st.kcls"), "label", "toxic", "threshold", above, NULL};
    const char *inv_at[] = {"model", tmp("st.kcls"), "label", "toxic", "threshold", thr, "invert", "true", NULL};
    const char *inv_up[] = {"model", tmp("st.kcls"), "label", "toxic", "threshold", above, "invert", "yes", NULL};
    void *a = make_stage(at, 1, &err), *b = make_stage(up, 1, &err), *c = make_stage(inv_at, 1, &err),
         *d = make_stage(inv_up, 1, &err);
    assert_true(a && b && c && d);
    assert_null(apply(a, t, "x"));
    assert_string_equal(apply(b, t, "x"), "classifier:below_threshold");
    assert_string_equal(apply(c, t, "x"), "classifier:toxic");
    assert_null(apply(d, t, "x"));
    stage()->destroy(a), stage()->destroy(b), stage()->destroy(c), stage()->destroy(d);
    // default label: no "hq" in the model, so its first label; default threshold 0.5
    const char *dflt[] = {"model", tmp("st.kcls"), NULL};
    void *e = make_stage(dflt, 1, &err);
    assert_non_null(e);
    long kept = 0, want = 0;
    for (int i = 0; i < tweets.n; i += 5) {
        classifier_predict(m, tweets.text[i], strlen(tweets.text[i]), p);
        want += p[0] >= 0.5f;
        kept += apply(e, tweets.text[i], "x") == NULL;
    }
    assert_int_equal(kept, want);
    stage()->destroy(e);
    classifier_free(m);
}

static void test_stage_pareto(void **state) {
    KilnErr err;
    KilnClassifier *m = train_small(5, 1L << 21);
    assert_int_equal(classifier_save(m, tmp("sp.kcls"), &err), 0);
    const char *kv[] = {"model", tmp("sp.kcls"), "label", "clean", "mode", "pareto", NULL};
    void *a = make_stage(kv, 42, &err), *a2 = make_stage(kv, 42, &err), *b = make_stage(kv, 43, &err);
    assert_true(a && a2 && b);
    // kept count against its expectation: P(pareto(9) > 1 - s) = (2 - s)^-9
    double expect = 0, var = 0;
    long kept = 0, differ = 0, n = 0;
    char id[32];
    for (int i = 0; i < tweets.n; i++, n++) {
        float p[2];
        classifier_predict(m, tweets.text[i], strlen(tweets.text[i]), p);
        double q = pow(2.0 - p[1], -9.0);
        expect += q;
        var += q * (1 - q);
        snprintf(id, sizeof id, "%d", i);
        const char *r = apply(a, tweets.text[i], id);
        assert_true(r == NULL || !strcmp(r, "classifier:pareto"));
        kept += r == NULL;
        assert_true((r == NULL) == (apply(a2, tweets.text[i], id) == NULL));  // same seed, same draw
        differ += (r == NULL) != (apply(b, tweets.text[i], id) == NULL);
    }
    print_message("pareto: kept %ld of %ld, expected %.1f +- %.1f; %ld differ under another seed\n", kept, n, expect,
                  sqrt(var), differ);
    assert_true(fabs((double)kept - expect) < 4 * sqrt(var));
    assert_true(differ > 0);
    stage()->destroy(a), stage()->destroy(a2), stage()->destroy(b);
    classifier_free(m);
}

static void test_stage_errors(void **state) {
    KilnErr err;
    KilnClassifier *m = train_small(5, 4096);
    assert_int_equal(classifier_save(m, tmp("se.kcls"), &err), 0);
    classifier_free(m);
    const char *none[] = {"threshold", "0.3", NULL};
    assert_null(make_stage(none, 1, &err));
    assert_non_null(strstr(err.msg, "model"));
    const char *missing[] = {"model", tmp("nope.kcls"), NULL};
    assert_null(make_stage(missing, 1, &err));
    assert_non_null(strstr(err.msg, "nope.kcls"));
    const char *label[] = {"model", tmp("se.kcls"), "label", "hq", NULL};
    assert_null(make_stage(label, 1, &err));
    assert_non_null(strstr(err.msg, "toxic, clean"));
    const char *mode[] = {"model", tmp("se.kcls"), "mode", "top", NULL};
    assert_null(make_stage(mode, 1, &err));
    const char *thr[] = {"model", tmp("se.kcls"), "threshold", "1.5", NULL};
    assert_null(make_stage(thr, 1, &err));
    assert_non_null(strstr(err.msg, "threshold"));
    const char *typo[] = {"model", tmp("se.kcls"), "treshold", "0.4", NULL};
    assert_null(make_stage(typo, 1, &err));
    assert_non_null(strstr(err.msg, "treshold"));
}

// ---------------------------------------------------------------- JSONL files and the command
// Writes tweets of the chosen classes as JSONL, with a bad line in the middle.
static void write_jsonl(const char *path, int want_toxic) {
    FILE *f = fopen(path, "w");
    KilnBuf b = {0};
    for (int i = 0; i < tweets.n; i++) {
        if ((tweets.cls[i] != 2) != want_toxic) continue;
        kbuf_clear(&b);
        kbuf_puts(&b, "");
        kbuf_json_escape(&b, tweets.text[i], strlen(tweets.text[i]));
        fprintf(f, "{\"id\":\"tw%d\",\"text\":\"%s\"}\n", i, b.data);
        if (i == 100) fputs("{not json\n", f);
    }
    kbuf_free(&b);
    fclose(f);
}

static long count_lines(const char *path, const char *needle) {
    char *d;
    size_t n;
    KilnErr err;
    if (kiln_read_file(path, &d, &n, &err)) return -1;
    long c = 0;
    for (char *s = d, *e; s < d + n; s = e + 1) {
        e = memchr(s, '\n', (size_t)(d + n - s));
        if (!e) e = d + n;
        *e = 0;
        c += !needle || strstr(s, needle) != NULL;
    }
    free(d);
    return c;
}

// What `kiln data classifier train` does with --label toxic=... --label clean=...
static int train_files(const KilnClsFile *files, int nfiles, int dim, const char *out) {
    const char *names[] = {"toxic", "clean"};
    KilnClsOpts o;
    classifier_opts_default(&o);
    o.epoch = 5, o.seed = 3, o.dim = dim;
    KilnClsData d = {files, nfiles, "text", o.seed, 0.1};
    KilnClsSet train, valid;
    clsset_init(&train, o.word_ngrams, o.buckets);
    clsset_init(&valid, o.word_ngrams, o.buckets);
    long per_label[2] = {0};
    KilnClassifier *m = NULL;
    KilnClsTrainStats st;
    KilnErr err;
    int rc = classifier_opts_check(&o, &err) || classifier_read_files(&d, names, nfiles, &train, &valid, per_label, NULL, &err) ||
             classifier_train(&m, &o, names, nfiles, &train, &st, &err) || classifier_save(m, out, &err);
    classifier_free(m);
    clsset_free(&train);
    clsset_free(&valid);
    return rc ? -1 : 0;
}

static int predict_file(const char *model, const char *in, const char *out, int tsv) {
    KilnClassifier *m;
    KilnErr err;
    if (classifier_load(&m, model, &err)) return -1;
    KilnClsPredictOpts po = {in, out, "text", 0, tsv};
    KilnClsPredictStats st;
    int rc = classifier_predict_jsonl(m, &po, &st, &err);
    classifier_free(m);
    return rc;
}

static void test_jsonl_files(void **state) {
    write_jsonl(tmp("toxic.jsonl"), 1);
    write_jsonl(tmp("clean.jsonl"), 0);
    KilnClsFile files[] = {{"toxic", tmp("toxic.jsonl")}, {"clean", tmp("clean.jsonl")}};
    assert_int_equal(train_files(files, 2, 32, tmp("cli.kcls")), 0);
    KilnClassifier *m;
    KilnErr err;
    assert_int_equal(classifier_load(&m, tmp("cli.kcls"), &err), 0);
    assert_string_equal(classifier_label(m, 0), "toxic");
    // eval: the clean file against the model's labels, clean positive
    KilnClsData clean = {&files[1], 1, "text", 1, 0.1};
    KilnClsSet set;
    KilnClsMetrics mt;
    long per_label[2] = {0};
    const char *names[] = {classifier_label(m, 0), classifier_label(m, 1)};
    clsset_init(&set, classifier_word_ngrams(m), classifier_buckets(m));
    assert_int_equal(classifier_read_files(&clean, names, 2, &set, NULL, per_label, NULL, &err), 0);
    assert_int_equal(classifier_eval(m, &set, 1, &mt, &err), 0);
    clsset_free(&set);
    // predict: every document comes out with a label and a score
    assert_int_equal(predict_file(tmp("cli.kcls"), tmp("toxic.jsonl"), tmp("pred.jsonl"), 0), 0);
    long docs = count_lines(tmp("toxic.jsonl"), "\"text\"");
    assert_int_equal(count_lines(tmp("pred.jsonl"), "\"score\":"), docs);
    long called_toxic = count_lines(tmp("pred.jsonl"), "\"label\":\"toxic\"");
    assert_true(called_toxic > docs * 9 / 10);
    assert_int_equal(predict_file(tmp("cli.kcls"), tmp("clean.jsonl"), tmp("pred.tsv"), 1), 0);
    assert_int_equal(count_lines(tmp("pred.tsv"), "\t"), count_lines(tmp("clean.jsonl"), "\"text\""));
    assert_true(count_lines(tmp("pred.tsv"), "\tclean\t") > 0);
    // errors: one label, a bad option, a label the model lacks, no model
    assert_int_equal(train_files(files, 1, 32, tmp("x.kcls")), -1);
    assert_int_equal(train_files(files, 2, 0, tmp("x.kcls")), -1);
    KilnClsFile nope = {"nope", tmp("clean.jsonl")};
    KilnClsData bad = {&nope, 1, "text", 1, 0.1};
    clsset_init(&set, classifier_word_ngrams(m), classifier_buckets(m));
    assert_int_equal(classifier_read_files(&bad, names, 2, &set, NULL, per_label, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "nope"));
    clsset_free(&set);
    classifier_free(m);
    assert_int_equal(predict_file(tmp("missing.kcls"), tmp("clean.jsonl"), tmp("pred2.tsv"), 1), -1);
    assert_int_equal(access(tmp("x.kcls"), F_OK), -1);
}

// Runs `kiln data classifier ARGS` quietly; its exit status.
static int run_kiln(const char *exe, const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s data classifier %s >/dev/null 2>&1", exe, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// `kiln data classifier` does what the library calls above do: the same model
// file, the same TSV; and it refuses bad command lines.
static void test_kiln_binary(void **state) {
    char exe[1024], cmd[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    assert_non_null(slash);
    strcpy(slash, "/../kiln");
    if (access(exe, X_OK)) {
        print_message("no kiln binary at %s; not checked\n", exe);
        return;
    }
    // the same files through the command: train and eval succeed, predict's TSV equals the library's
    char args[2048];
    snprintf(args, sizeof args, "train --label toxic=%s --label clean=%s --epoch 5 --seed 3 -o %s", tmp("toxic.jsonl"),
             tmp("clean.jsonl"), tmp("cmd.kcls"));
    assert_int_equal(run_kiln(exe, args), 0);
    snprintf(args, sizeof args, "eval -m %s --label clean=%s --positive clean", tmp("cmd.kcls"), tmp("clean.jsonl"));
    assert_int_equal(run_kiln(exe, args), 0);
    char *a, *b;
    size_t la, lb;
    KilnErr err;
    assert_int_equal(kiln_read_file(tmp("cli.kcls"), &a, &la, &err), 0);  // training is bit-reproducible
    assert_int_equal(kiln_read_file(tmp("cmd.kcls"), &b, &lb, &err), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    snprintf(cmd, sizeof cmd, "%s data classifier predict -m %s --tsv -i %s > %s 2>/dev/null", exe, tmp("cli.kcls"),
             tmp("clean.jsonl"), tmp("bin.tsv"));
    assert_int_equal(system(cmd), 0);
    assert_int_equal(kiln_read_file(tmp("pred.tsv"), &a, &la, &err), 0);
    assert_int_equal(kiln_read_file(tmp("bin.tsv"), &b, &lb, &err), 0);
    assert_true(la > 1000);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    // the command's own errors: no -o, a --label without NAME=, an unknown subcommand
    snprintf(args, sizeof args, "train --label toxic=%s --label clean=%s", tmp("toxic.jsonl"), tmp("clean.jsonl"));
    assert_int_equal(run_kiln(exe, args), 1);
    snprintf(args, sizeof args, "train --label %s -o %s", tmp("toxic.jsonl"), tmp("x.kcls"));
    assert_int_equal(run_kiln(exe, args), 1);
    snprintf(args, sizeof args, "train --label toxic=%s -o %s", tmp("toxic.jsonl"), tmp("x.kcls"));
    assert_int_equal(run_kiln(exe, args), 1);
    snprintf(args, sizeof args, "predict -m %s -i %s", tmp("missing.kcls"), tmp("clean.jsonl"));
    assert_int_equal(run_kiln(exe, args), 1);
    assert_int_equal(run_kiln(exe, "frobnicate"), 1);
    assert_int_equal(access(tmp("x.kcls"), F_OK), -1);
}

int main(int argc, char **argv) {
    if (test_data_dir(argc, argv, NULL, data_dir, sizeof data_dir, NULL)) return TEST_SKIP;
    if (load_davidson() || load_text()) {
        printf("SKIP: no test data under %s\n", data_dir);
        return TEST_SKIP;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features),
        cmocka_unit_test(test_opts),
        cmocka_unit_test(test_davidson_toxicity),
        cmocka_unit_test(test_quality),
        cmocka_unit_test(test_softmax_three_labels),
        cmocka_unit_test(test_roundtrip_determinism),
        cmocka_unit_test(test_corrupt_files),
        cmocka_unit_test(test_stage_threshold),
        cmocka_unit_test(test_stage_pareto),
        cmocka_unit_test(test_stage_errors),
        cmocka_unit_test(test_jsonl_files),
        cmocka_unit_test(test_kiln_binary),
    };
    int rc = TEST_RUN("classifier", tests);
    corpus_free(&tweets), corpus_free(&wiki), corpus_free(&kernel);
    return rc;
}
