// loss.c: the mean loss of a model over a loader's batches (validation).
#include "train/loss.h"

#include <stdlib.h>

int evaluate_loss(KilnModel *m, KilnLoader *val, int max_batches, double *loss, KilnErr *err) {
    loader_reset(val);
    int B = val->B, T = val->T;
    int32_t *tok = malloc(sizeof(int32_t) * B * T), *tgt = malloc(sizeof(int32_t) * B * T);
    if (!tok || !tgt) {
        free(tok);
        free(tgt);
        return kiln_fail(err, "out of memory");
    }
    double total = 0.0;
    long rows_total = 0;
    int rc = 0;
    for (int b = 0; max_batches == 0 || b < max_batches; b++) {
        int rows = loader_next_eval(val, tok, tgt);
        if (rows == 0) break;
        if ((rc = gpt_forward(m, tok, tgt, rows, T, 0.0f, 0, err))) break;
        total += m->loss * rows;
        rows_total += rows;
    }
    free(tok);
    free(tgt);
    if (rc) return rc;
    if (rows_total == 0) return kiln_fail(err, "validation split is empty");
    *loss = total / (double)rows_total;
    return 0;
}
