// utf8.h: UTF-8 validation, repair and counting (internal to the library).
#ifndef KILN_CORE_UTF8_H
#define KILN_CORE_UTF8_H

#include "kiln/core.h"

#include <stddef.h>

// Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one.
size_t utf8_seq(const unsigned char *s, size_t n);
// 1 if s[0..n) is valid UTF-8 (no overlongs, surrogates or values > U+10FFFF).
int utf8_valid(const char *s, size_t n);
// Code points in s[0..n) (bytes that do not continue a sequence; Python's len for valid UTF-8).
long utf8_chars(const char *s, size_t n);
// Copies s into out (cleared first) with every invalid byte sequence replaced by
// U+FFFD; returns the number of replacements, or -1 when out of memory.
long utf8_repair(const char *s, size_t n, KilnBuf *out);

#endif
