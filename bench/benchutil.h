// benchutil.h: what the single-thread stage benchmarks share: CPU time, corpora
// of real documents held in memory, building a stage, and its MB/s over a corpus.
#ifndef KILN_BENCHUTIL_H
#define KILN_BENCHUTIL_H

#include "kiln/data.h"

#include <stddef.h>

// CPU time of this thread: other processes on a shared machine disturb it little.
double cpu_now(void);

typedef struct {
    const char *name;  // when set, each document gets it as source and its index as id
    KilnDoc *d;
    int n;
    size_t bytes;
} Corpus;

// The file's contents (malloc'd), or NULL with the error printed.
char *bench_read(const char *path, size_t *len);

void corpus_add(Corpus *c, const char *s, size_t n);
// Splits the file at path into documents at lines starting with cut but not with
// but_not (may be NULL), or, with cut NULL, every `every` lines. -1 (message
// printed) when the file cannot be read.
int corpus_load_text(Corpus *c, const char *path, const char *cut, const char *but_not, int every);
void corpus_free(Corpus *c);

// The stage with one parameter k=v (k NULL: none); exits with a message on error.
void *bench_stage(const KilnStageDef *def, const char *k, const char *v);

// MB/s of input through def's apply over the corpus, repeated for at least secs
// of CPU time; each document is copied first (stages rewrite the text), and
// def NULL measures that copy alone.
double bench_measure(const KilnStageDef *def, void *st, const Corpus *c, double secs, KilnScratch *s);

#endif
