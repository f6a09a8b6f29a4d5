// fuzz_csv: the CSV reader (core/csv.c) in all four dialects.
#include "core/csv.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int dialect = 0; dialect < 4; dialect++) {
        KilnCsv c;
        csv_init(&c, (const char *)data, size);
        c.strict = dialect & 1;
        c.lf_only = dialect >> 1;
        KilnCsvRecord r = {0};
        int rc;
        while ((rc = csv_next(&c, &r)) != CSV_END && rc != CSV_UNTERMINATED && rc != CSV_OOM) {
            for (int i = 0; i < r.nfields; i++)
                if (strlen(r.field[i].data) > r.field[i].len) abort();  // NUL-terminated within the field
        }
        csv_record_free(&r);
    }
    return 0;
}
