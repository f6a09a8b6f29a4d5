// bench_tokenizer: encoding throughput of a tokenizer on a file, one thread and
// all threads (documents = lines, batched), and BPE training time.
// usage: bench_tokenizer encode TOK FILE [repeats]
//        bench_tokenizer train VOCAB PATTERN FILE...
// Prints one JSON object.
#include "kiln/tokenizer.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int bench_encode(const char *tok_path, const char *file, int repeats) {
    KilnTokenizer *t;
    KilnErr err;
    char *text;
    size_t len;
    if (tokenizer_load(&t, tok_path, &err) || kiln_read_file(file, &text, &len, &err))
        return fprintf(stderr, "%s\n", err.msg), 1;
    double *one = malloc(sizeof(double) * repeats), *all = malloc(sizeof(double) * repeats);
    long ntok = 0;
    // documents for the batch run: ~64 KiB slices cut at newlines
    int ndoc = 0;
    const char **docs = malloc(sizeof(char *) * (len / 1024 + 2));
    size_t *lens = malloc(sizeof(size_t) * (len / 1024 + 2));
    for (size_t at = 0; at < len;) {
        size_t end = at + 65536 < len ? at + 65536 : len;
        while (end < len && text[end - 1] != '\n') end++;
        docs[ndoc] = text + at;
        lens[ndoc++] = end - at;
        at = end;
    }
    KilnIds *outs = calloc((size_t)ndoc, sizeof *outs);
    for (int r = 0; r < repeats; r++) {
        KilnIds ids = {0};
        double t0 = kiln_now();
        if (tokenizer_encode(t, text, len, KILN_SPECIAL_TEXT, &ids, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
        one[r] = kiln_now() - t0;
        ntok = ids.n;
        ids_free(&ids);
        t0 = kiln_now();
        if (tokenizer_encode_batch(t, docs, lens, ndoc, KILN_SPECIAL_TEXT, outs, NULL, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
        all[r] = kiln_now() - t0;
        for (int d = 0; d < ndoc; d++) ids_free(&outs[d]);
    }
    qsort(one, (size_t)repeats, sizeof(double), cmp_double);
    qsort(all, (size_t)repeats, sizeof(double), cmp_double);
    double mb = (double)len / 1e6;
    printf("{\"impl\": \"kiln\", \"bytes\": %zu, \"tokens\": %ld, \"mb_per_s_1thread\": %.2f, "
           "\"mb_per_s_all_threads\": %.2f, \"threads\": %d}\n",
           len, ntok, mb / one[repeats / 2], mb / all[repeats / 2], omp_get_max_threads());
    tokenizer_free(t);
    return 0;
}

static int bench_train(int vocab, const char *pattern, const char *const *files, int nfiles) {
    KilnBpeTrainOptions o = {0};
    const char *sp[] = {"<|endoftext|>"};
    o.vocab_size = vocab;
    o.pattern = tokenizer_pattern_by_name(pattern) ? tokenizer_pattern_by_name(pattern) : pattern;
    o.specials = sp;
    o.n_special = 1;
    o.min_frequency = 2;
    KilnTokenizer *t;
    KilnErr err;
    double t0 = kiln_now();
    if (tokenizer_train(&t, files, nfiles, &o, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    double s = kiln_now() - t0;
    printf("{\"impl\": \"kiln\", \"seconds\": %.3f, \"vocab\": %d, \"threads\": %d}\n", s, tokenizer_vocab_size(t),
           omp_get_max_threads());
    tokenizer_free(t);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "encode")) return bench_encode(argv[2], argv[3], argc > 4 ? atoi(argv[4]) : 5);
    if (argc >= 5 && !strcmp(argv[1], "train"))
        return bench_train(atoi(argv[2]), argv[3], (const char *const *)argv + 4, argc - 4);
    fprintf(stderr, "usage: bench_tokenizer encode TOK FILE [repeats] | bench_tokenizer train VOCAB PATTERN FILE...\n");
    return 2;
}
