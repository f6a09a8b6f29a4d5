// bench_filters.c: single-thread throughput (MB/s of input text) of the
// per-document quality filters on real text: WikiText-2 raw test articles and
// the Linux kernel source in 200-line pieces, from ../shared/data. Time is the
// thread's CPU time, so other processes on a shared machine disturb it little.
//   bench_filters SHARED_DATA_DIR [CPU seconds per measurement, default 1]
#include "benchutil.h"
#include "kiln/data.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SHARED_DATA_DIR [seconds]\n", argv[0]);
        return 2;
    }
    double secs = argc > 2 ? atof(argv[2]) : 1.0;
    char path[4096], words[4096];
    Corpus wiki = {0}, code = {0};
    snprintf(path, sizeof path, "%s/pretrain/wikitext-2-raw/wiki.test.raw", argv[1]);
    if (corpus_load_text(&wiki, path, " = ", " = =", 0)) return 1;  // articles: " = Title = " lines
    snprintf(path, sizeof path, "%s/pretrain/code/linux-kernel.txt", argv[1]);
    if (corpus_load_text(&code, path, NULL, NULL, 200)) return 1;
    snprintf(words, sizeof words, "%s/toxicity/ldnoobw/en", argv[1]);
    const char *names[] = {"gopher_quality", "gopher_repetition", "c4", "wordlist"};
    printf("stage              wiki MB/s  kernel MB/s  (1 thread, CPU time; %.1f MB and %.1f MB of text)\n", wiki.bytes / 1e6,
           code.bytes / 1e6);
    KilnScratch s = {0};
    for (int k = 0; k < 4; k++) {
        const KilnStageDef *def = stage_find(names[k]);
        if (!def) {
            fprintf(stderr, "%s: unknown stage\n", names[k]);
            return 1;
        }
        void *st = bench_stage(def, k == 3 ? "words" : NULL, words);
        double a = bench_measure(def, st, &wiki, secs, &s), b = bench_measure(def, st, &code, secs, &s);
        printf("%-18s %9.1f  %11.1f\n", names[k], a, b);
        def->destroy(st);
    }
    scratch_free(&s);
    corpus_free(&wiki);
    corpus_free(&code);
    return 0;
}
