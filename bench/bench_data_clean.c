// bench_data_clean.c: single-thread throughput (MB/s of input text) of the
// clean, pii and augment_gender stages on real text from ../shared/data:
// WikiText-2 raw articles (CRLF), the article benchmark's texts (UTF-8 with CJK
// and emoji), Linux kernel source in 200-line pieces, TinyStories stories.
//   bench_data_clean SHARED_DATA_DIR [CPU seconds per measurement, default 1]
#include "benchutil.h"
#include "kiln/data.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const KilnStageDef STAGE_CLEAN, STAGE_PII, STAGE_AUGMENT_GENDER;

static int load_articles(Corpus *c, const char *path) {
    size_t len;
    char *data = bench_read(path, &len);
    if (!data) return -1;
    cJSON *root = cJSON_ParseWithLength(data, len);
    for (cJSON *a = root ? root->child : NULL; a; a = a->next) {
        const char *body = cJSON_GetStringValue(cJSON_GetObjectItem(a, "articleBody"));
        if (body) corpus_add(c, body, strlen(body));
    }
    cJSON_Delete(root);
    free(data);
    return 0;
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
    if (corpus_load_text(&corp[0], path, " = ", NULL, 0)) return 1;
    snprintf(path, sizeof path, "%s/web/article-extraction-benchmark/ground-truth.json", argv[1]);
    if (load_articles(&corp[1], path)) return 1;
    snprintf(path, sizeof path, "%s/pretrain/code/linux-kernel.txt", argv[1]);
    if (corpus_load_text(&corp[2], path, NULL, NULL, 200)) return 1;
    snprintf(path, sizeof path, "%s/pretrain/tinystories/TinyStories-train.head-part1.txt", argv[1]);
    if (corpus_load_text(&corp[3], path, "<|endoftext|>", NULL, 0)) return 1;
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
    for (int c = 0; c < 4; c++) printf(" %14.0f", bench_measure(NULL, NULL, &corp[c], secs, NULL));
    printf("\n");
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        void *st = bench_stage(runs[r].def, runs[r].k, runs[r].v);
        printf("%-28s", runs[r].label);
        for (int c = 0; c < 4; c++) printf(" %14.1f", bench_measure(runs[r].def, st, &corp[c], secs, &s));
        printf("\n");
        fflush(stdout);
        runs[r].def->destroy(st);
    }
    scratch_free(&s);
    for (int c = 0; c < 4; c++) corpus_free(&corp[c]);
    return 0;
}
