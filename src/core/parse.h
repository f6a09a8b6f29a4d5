// parse.h: booleans and numbers read from text (config values, --set, stage
// parameters, task and toxicity files, the control file), by one rule each:
// the whole text must be the value, and a number must fit.
#ifndef KILN_CORE_PARSE_H
#define KILN_CORE_PARSE_H

#include <stdint.h>

// true/false, yes/no, on/off, 1/0 in any case: *out = 1 or 0. -1 for anything else.
int kiln_parse_bool(const char *s, int *out);
// A base-10 integer (strtol's spelling: leading white space, a sign) that is all
// of s and lies in [lo, hi]. -1 when s is empty, has more after the number,
// overflows or is out of range.
int kiln_parse_long(const char *s, long lo, long hi, long *out);
// A base-10 unsigned integer that is all of s, without a minus sign. -1 when
// empty, followed by more, negative or over 2^64 - 1.
int kiln_parse_u64(const char *s, uint64_t *out);
// A number in strtod's spellings (1e-3, 0x1p4, inf) that is all of s. -1 when
// empty, followed by more, NaN, or too large for the type; a value too small
// for it reads as what strtod gives (0 or a subnormal). Callers that want a
// finite value or a range check it themselves.
int kiln_parse_double(const char *s, double *out);
int kiln_parse_float(const char *s, float *out);

#endif
