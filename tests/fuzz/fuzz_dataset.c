// fuzz_dataset: a task's CSV data file (ds_read_csv_text: header, records as
// {column: value} objects), strict and with bad records skipped.
#include "task/task_internal.h"

static int count(void *ctx, const cJSON *rec, long index, long line, KilnErr *err) {
    (*(long *)ctx)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int skip_bad = 0; skip_bad < 2; skip_bad++) {
        KilnErr err;
        long n = 0, nrecords, skipped;
        ds_read_csv_text((const char *)data, size, "fuzz.csv", skip_bad, count, &n, &nrecords, &skipped, &err);
    }
    return 0;
}
