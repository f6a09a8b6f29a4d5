// bench_data_classifier: one-thread speed of the fastText-style classifier:
// training (tokens/s, the SGD loop alone and with hashing) and prediction (MB/s
// of text) on WikiText-2 paragraphs (hq) against Linux kernel source (lq).
// usage: bench_data_classifier [SHARED_DATA_DIR] [REPEATS]
#include "kiln/classifier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;
    size_t n;
    int label;
} Doc;

// WikiText paragraphs (lines over 200 bytes, not headings) and kernel source in
// pieces of as many bytes, alternating, so both labels are the same size.
static Doc *load(const char *dir, char **wiki, char **kern, size_t *ndocs, size_t *bytes) {
    char path[1024];
    size_t wl, kl;
    KilnErr err;
    snprintf(path, sizeof path, "%s/pretrain/wikitext-2-raw/wiki.test.raw", dir);
    if (kiln_read_file(path, wiki, &wl, &err)) return fprintf(stderr, "%s\n", err.msg), NULL;
    snprintf(path, sizeof path, "%s/pretrain/code/linux-kernel.txt", dir);
    if (kiln_read_file(path, kern, &kl, &err)) return fprintf(stderr, "%s\n", err.msg), NULL;
    Doc *d = malloc(sizeof(Doc) * 20000);
    size_t n = 0, ko = 0;
    *bytes = 0;
    for (char *s = *wiki, *e; s < *wiki + wl && n < 19998; s = e + 1) {
        e = memchr(s, '\n', (size_t)(*wiki + wl - s));
        if (!e) e = *wiki + wl;
        size_t len = (size_t)(e - s);
        if (len <= 200 || s[1] == '=' || ko + len > kl) continue;
        d[n++] = (Doc){s, len, 0};
        d[n++] = (Doc){*kern + ko, len, 1};
        ko += len;
        *bytes += 2 * len;
    }
    *ndocs = n;
    return d;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "../shared/data";
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    char *wiki, *kern;
    size_t n, bytes;
    Doc *d = load(dir, &wiki, &kern, &n, &bytes);
    if (!d) return 1;
    KilnClsOpts o;
    KilnErr err;
    classifier_opts_default(&o);
    KilnClsSet set;
    clsset_init(&set, o.word_ngrams, o.buckets);
    double t0 = kiln_now();
    for (size_t i = 0; i < n; i++)
        if (clsset_add(&set, d[i].s, d[i].n, d[i].label, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    double hash_s = kiln_now() - t0;
    const char *labels[] = {"hq", "lq"};
    KilnClassifier *m;
    KilnClsTrainStats st;
    if (classifier_train(&m, &o, labels, 2, &set, &st, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    printf("data: %zu documents, %.2f MB, %ld tokens (with </s>)\n", n, bytes / 1e6, set.tokens);
    printf("hashing features: %.1f MB/s, %.2f M tokens/s\n", bytes / 1e6 / hash_s, set.tokens / 1e6 / hash_s);
    printf("training (dim %d, wordNgrams %d, %d epochs): %.2f M tokens/s in SGD, %.2f M tokens/s with hashing\n",
           o.dim, o.word_ngrams, o.epoch, st.tokens_per_s / 1e6,
           (double)set.tokens * o.epoch / (st.seconds + hash_s) / 1e6);
    float probs[2];
    double best = 1e30;
    long right = 0;
    for (int r = 0; r < reps; r++) {
        right = 0;
        t0 = kiln_now();
        for (size_t i = 0; i < n; i++) right += classifier_predict(m, d[i].s, d[i].n, probs) == d[i].label;
        double s = kiln_now() - t0;
        if (s < best) best = s;
    }
    printf("prediction: %.1f MB/s, %.0f documents/s (one thread, best of %d); training-set accuracy %.4f\n",
           bytes / 1e6 / best, n / best, reps, (double)right / n);
    classifier_free(m);
    clsset_free(&set);
    free(d);
    free(wiki);
    free(kern);
    return 0;
}
