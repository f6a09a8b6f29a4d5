// benchutil.c: see benchutil.h.
#include "benchutil.h"
#include "kiln/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

char *bench_read(const char *path, size_t *len) {
    char *data;
    KilnErr err;
    if (kiln_read_file(path, &data, len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    return data;
}

void corpus_add(Corpus *c, const char *s, size_t n) {
    c->d = realloc(c->d, (size_t)(c->n + 1) * sizeof *c->d);
    memset(&c->d[c->n], 0, sizeof c->d[0]);
    kbuf_set(&c->d[c->n].text, s, n);
    if (c->name) {
        char id[32];
        snprintf(id, sizeof id, "%d", c->n);
        kbuf_puts(&c->d[c->n].id, id);
        kbuf_puts(&c->d[c->n].source, c->name);
    }
    c->n++;
    c->bytes += n;
}

int corpus_load_text(Corpus *c, const char *path, const char *cut, const char *but_not, int every) {
    size_t len;
    char *data = bench_read(path, &len);
    if (!data) return -1;
    size_t start = 0, cl = cut ? strlen(cut) : 0, nl = but_not ? strlen(but_not) : 0;
    int lines = 0;
    for (size_t i = 0; i <= len; i++) {
        int at_line = i > 0 && i < len && data[i - 1] == '\n';
        int split = cut ? at_line && !strncmp(data + i, cut, cl) && !(but_not && !strncmp(data + i, but_not, nl))
                        : at_line && ++lines % every == 0;
        if ((split || i == len) && i > start) {
            corpus_add(c, data + start, i - start);
            start = i;
        }
    }
    free(data);
    return 0;
}

void corpus_free(Corpus *c) {
    for (int i = 0; i < c->n; i++) doc_free(&c->d[i]);
    free(c->d);
}

void *bench_stage(const KilnStageDef *def, const char *k, const char *v) {
    KilnParams ps = {0};
    KilnErr err;
    void *st = NULL;
    if ((k && params_add(&ps, k, v, "bench", &err)) || def->create(&ps, 1, &st, &err)) {
        fprintf(stderr, "%s: %s\n", def->name, err.msg);
        exit(1);
    }
    params_free(&ps);
    return st;
}

double bench_measure(const KilnStageDef *def, void *st, const Corpus *c, double secs, KilnScratch *s) {
    KilnDoc d = {0};
    double t0 = cpu_now(), t;
    size_t bytes = 0;
    do {
        for (int i = 0; i < c->n; i++) {
            doc_copy(&d, &c->d[i]);
            if (def) def->apply(st, &d, s);
            bytes += c->d[i].text.len;
        }
        t = cpu_now() - t0;
    } while (t < secs);
    doc_free(&d);
    return bytes / 1e6 / t;
}
