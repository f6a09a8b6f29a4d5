// parse.c: booleans and numbers from text (parse.h).
#include "core/parse.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int kiln_parse_bool(const char *s, int *out) {
    static const char *const T[] = {"true", "yes", "on", "1"}, *const F[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, T[i])) return *out = 1, 0;
        if (!strcasecmp(s, F[i])) return *out = 0, 0;
    }
    return -1;
}

int kiln_parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int kiln_parse_u64(const char *s, uint64_t *out) {
    const char *p = s;
    while (*p == ' ' || (*p >= '\t' && *p <= '\r')) p++;
    if (*p == '-') return -1;  // strtoull would wrap it around
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno || v > UINT64_MAX) return -1;
    *out = (uint64_t)v;
    return 0;
}

// All of s was the number, not NaN, and not an overflow: ERANGE with an
// infinite result. ERANGE with a small one is an underflow, which reads as the
// value strtod/strtof rounded to.
static int number_ok(const char *s, const char *end, double v) {
    return end != s && !*end && !isnan(v) && !(errno == ERANGE && isinf(v));
}

int kiln_parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    return number_ok(s, end, v) ? (*out = v, 0) : -1;
}

int kiln_parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);  // not (float)strtod: that would round twice
    return number_ok(s, end, v) ? (*out = v, 0) : -1;
}
