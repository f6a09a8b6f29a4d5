// numfmt.c: numbers as text people read and programs parse back exactly.
#include "kiln/core.h"

#include <stdlib.h>

const char *kiln_float_str(float v, char buf[32]) {
    // the fewest significant digits that read back as the same float (0.05, not 0.0500000007)
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, 32, "%.*g", digits, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return buf;
}
