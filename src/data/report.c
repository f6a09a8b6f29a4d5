// report.c: per-stage counts: documents and bytes in and out, and every drop
// reason with its count and its first few documents.
#include "kiln/data.h"

#include <stdlib.h>
#include <string.h>

void stage_report_init(KilnStageReport *r, const char *name) {
    memset(r, 0, sizeof *r);
    r->name = strdup(name);
}

void stage_report_free(KilnStageReport *r) {
    for (int i = 0; i < r->nreasons; i++) free(r->reasons[i].reason);
    free(r->reasons);
    free(r->name);
    free(r->extra_json);
    memset(r, 0, sizeof *r);
}

// "source/id: first words of the text" with newlines shown as spaces.
static void example(char *out, size_t cap, const KilnDoc *doc) {
    int n = snprintf(out, cap, "%s/%s: ", doc->source.data ? doc->source.data : "",
                     doc->id.data ? doc->id.data : "");
    if (n < 0 || (size_t)n >= cap - 1) return;
    size_t o = (size_t)n, i = 0, len = doc->text.len;
    while (o < cap - 4 && i < len) {
        char c = doc->text.data[i++];
        out[o++] = c == '\n' || c == '\r' || c == '\t' ? ' ' : c;
    }
    // do not end inside a UTF-8 sequence
    while (o > (size_t)n && ((unsigned char)out[o - 1] & 0xC0) == 0x80) o--;
    if (o > (size_t)n && (unsigned char)out[o - 1] >= 0xC0) o--;
    if (i < len) out[o++] = '.', out[o++] = '.', out[o++] = '.';
    out[o] = 0;
}

void stage_report_drop(KilnStageReport *r, const char *reason, const KilnDoc *doc) {
    KilnDropReason *d = NULL;
    for (int i = 0; i < r->nreasons && !d; i++)
        if (!strcmp(r->reasons[i].reason, reason)) d = &r->reasons[i];
    if (!d) {
        KilnDropReason *nr = realloc(r->reasons, (size_t)(r->nreasons + 1) * sizeof *nr);
        if (!nr) return;  // counts stay exact in docs_in/docs_out; only the breakdown is lost
        r->reasons = nr;
        d = &r->reasons[r->nreasons++];
        memset(d, 0, sizeof *d);
        d->reason = strdup(reason);
    }
    if (d->docs < KILN_DROP_EXAMPLES) example(d->examples[d->docs], sizeof d->examples[0], doc);
    d->docs++;
    d->bytes += (long)doc->text.len;
}

int stage_reject(KilnDocWriter *rejects, KilnStageReport *r, const char *reason, const KilnDoc *doc, KilnErr *err) {
    stage_report_drop(r, reason, doc);
    if (!rejects) return 0;
    KilnBuf x = {0};
    int rc = kbuf_puts(&x, "\"drop\":\"") || kbuf_json_escape(&x, reason, strlen(reason)) || kbuf_putc(&x, '"')
                 ? kiln_fail(err, "out of memory")
                 : docwriter_put(rejects, doc, x.data, err);
    kbuf_free(&x);
    return rc;
}

void scratch_free(KilnScratch *s) {
    kbuf_free(&s->a);
    kbuf_free(&s->b);
}
