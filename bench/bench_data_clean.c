// bench_data_clean.c: single-thread throughput (MB/s of input text) of the
// clean, pii and augment_gender stages on real text from ../shared/data:
// WikiText-2 raw articles (CRLF), the article benchmark's texts (UTF-8 with CJK
// and emoji), Linux kernel source in 200-line pieces, TinyStories stories.
//   bench_data_clean SHARED_DATA_DIR [CPU seconds per measurement, default 1]
#include "kiln/data.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern const KilnStageDef STAGE_CLEAN, STAGE_PII, STAGE_AUGMENT_GENDER;

// CPU time of this thread: other processes on a shared machine disturb it little.
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    const char *name;
    KilnDoc *d;
    int n;
    size_t bytes;
} Corpus;

static void add(Corpus *c, const char *s, size_t n) {
    c->d = realloc(c->d, (size_t)(c->n + 1) * sizeof *c->d);
    memset(&c->d[c->n], 0, sizeof c->d[0]);
    kbuf_set(&c->d[c->n].text, s, n);
    char id[32];
    snprintf(id, sizeof id, "%d", c->n);
    kbuf_puts(&c->d[c->n].id, id);
    kbuf_puts(&c->d[c->n].source, c->name);
    c->n++;
    c->bytes += n;
}

// Splits a file into documents at lines starting with `cut` (or every `every` lines).
static int load_text(Corpus *c, const char *path, const char *cut, int every) {
    char *data;
    size_t len;
    KilnErr err;
    if (kiln_read_file(path, &data, &len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    size_t start = 0, cl = cut ? strlen(cut) : 0;
    int lines = 0;
    for (size_t i = 0; i <= len; i++) {
        int at_line = i > 0 && i < len && data[i - 1] == '\n';
        int split = cut ? at_line && !strncmp(data + i, cut, cl) : at_line && ++lines % every == 0;
        if ((split || i == len) && i > start) {
            add(c, data + start, i - start);
            start = i;
        }
    }
    free(data);
    return 0;
}

static int load_articles(Corpus *c, const char *path) {
    char *data;
    size_t len;
    KilnErr err;
    if (kiln_read_file(path, &data, &len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    cJSON *root = cJSON_ParseWithLength(data, len);
    for (cJSON *a = root ? root->child : NULL; a; a = a->next) {
        const char *body = cJSON_GetStringValue(cJSON_GetObjectItem(a, "articleBody"));
        if (body) add(c, body, strlen(body));
    }
    cJSON_Delete(root);
    free(data);
    return 0;
}

static double measure(const KilnStageDef *def, void *st, const Corpus *c, double secs, KilnScratch *s) {
    KilnDoc d = {0};
    double t0 = cpu_now(), t;
    size_t bytes = 0;
    do {
        for (int i = 0; i < c->n; i++) {
            doc_copy(&d, &c->d[i]);  // stages rewrite the text
            def->apply(st, &d, s);
            bytes += c->d[i].text.len;
        }
        t = cpu_now() - t0;
    } while (t < secs);
    doc_free(&d);
    return bytes / 1e6 / t;
}

// The copy alone (included in the figures above), to show what it costs.
static double measure_copy(const Corpus *c, double secs) {
    KilnDoc d = {0};
    double t0 = cpu_now(), t;
    size_t bytes = 0;
    do {
        for (int i = 0; i < c->n; i++) {
            doc_copy(&d, &c->d[i]);
            bytes += c->d[i].text.len;
        }
        t = cpu_now() - t0;
    } while (t < secs);
    doc_free(&d);
    return bytes / 1e6 / t;
}

static void *make(const KilnStageDef *def, const char *k, const char *v) {
    KilnParams ps = {0};
    KilnErr err;
    void *st = NULL;
    if (k) params_add(&ps, k, v, "bench", &err);
    if (def->create(&ps, 1, &st, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    params_free(&ps);
    return st;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SHARED_DATA_DIR [seconds]\n", argv[0]);
        return 2;
    }
    double secs = argc > 2 ? atof(argv[2]) : 1.0;
    char path[4096];
    Corpus corp[4] = {{.name = "wikitext-raw"}, {.name = "articles"}, {.name = "linux"}, {.name = "tinystories"}};
    snprintf(path, sizeof path, "%s/pretrain/wikitext-2-raw/wiki.test.raw", argv[1]);
    if (load_text(&corp[0], path, " = ", 0)) return 1;
    snprintf(path, sizeof path, "%s/web/article-extraction-benchmark/ground-truth.json", argv[1]);
    if (load_articles(&corp[1], path)) return 1;
    snprintf(path, sizeof path, "%s/pretrain/code/linux-kernel.txt", argv[1]);
    if (load_text(&corp[2], path, NULL, 200)) return 1;
    snprintf(path, sizeof path, "%s/pretrain/tinystories/TinyStories-train.head-part1.txt", argv[1]);
    if (load_text(&corp[3], path, "<|endoftext|>", 0)) return 1;
    struct {
        const char *label;
        const KilnStageDef *def;
        const char *k, *v;
    } runs[] = {
        {"clean", &STAGE_CLEAN, NULL, NULL},
        {"clean symbols=names", &STAGE_CLEAN, "symbols", "names"},
        {"clean symbols=remove", &STAGE_CLEAN, "symbols", "remove"},
        {"pii", &STAGE_PII, NULL, NULL},
        {"augment_gender fraction=1", &STAGE_AUGMENT_GENDER, "fraction", "1"},
    };
    KilnScratch s = {0};
    printf("%-28s", "MB/s, one thread");
    for (int c = 0; c < 4; c++) printf(" %14s", corp[c].name);
    printf("\n%-28s", "(documents, MB)");
    for (int c = 0; c < 4; c++) printf("   %5d %5.2fM", corp[c].n, corp[c].bytes / 1e6);
    printf("\n%-28s", "doc copy only");
    for (int c = 0; c < 4; c++) printf(" %14.0f", measure_copy(&corp[c], secs));
    printf("\n");
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        void *st = make(runs[r].def, runs[r].k, runs[r].v);
        printf("%-28s", runs[r].label);
        for (int c = 0; c < 4; c++) printf(" %14.1f", measure(runs[r].def, st, &corp[c], secs, &s));
        printf("\n");
        fflush(stdout);
        runs[r].def->destroy(st);
    }
    scratch_free(&s);
    for (int c = 0; c < 4; c++) {
        for (int i = 0; i < corp[c].n; i++) doc_free(&corp[c].d[i]);
        free(corp[c].d);
    }
    return 0;
}
