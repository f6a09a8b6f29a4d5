// filter_text.h: text primitives shared by the heuristic quality filters
// (gopher.c, c4.c, wordlist.c): UTF-8 decoding, Python's notions of whitespace,
// line breaks and letters (datatrove is Python, and its thresholds count code
// points), a simple word tokenizer and a sentence splitter, and a string set.
#ifndef KILN_FILTER_TEXT_H
#define KILN_FILTER_TEXT_H

#include "kiln/core.h"

#include "core/utf8.h"

#include <stddef.h>
#include <stdint.h>

// Decodes the code point at s[0..n) (n >= 1) into *cp and returns its byte
// length; an invalid byte decodes as U+FFFD of length 1.
static inline size_t ft_decode(const char *s, size_t n, uint32_t *cp) {
    size_t k = utf8_decode(s, n, cp);
    if (k) return k;
    *cp = 0xFFFD;
    return 1;
}

// The code point that ends at s[end) (end >= 1), decoded; *start gets its offset.
uint32_t ft_decode_back(const char *s, size_t end, size_t *start);

int ft_is_linebreak(uint32_t cp);  // a str.splitlines boundary (\n \r \v \f \x1c-\x1e \x85 \u2028 \u2029)
int ft_is_alpha(uint32_t cp);      // Python str.isalpha: categories Lu Ll Lt Lm Lo
int ft_is_digit(uint32_t cp);      // category Nd (what Python's re \d matches)
int ft_in_punct_set(uint32_t cp);  // datatrove's PUNCTUATION_SET (utils/text.py)
size_t ft_cps(const char *s, size_t n);  // number of code points (Python len)

// Python str.strip / lstrip / rstrip of s[0..n): the kept range [*b, *e).
void ft_strip(const char *s, size_t n, size_t *b, size_t *e);
size_t ft_lstrip(const char *s, size_t n);  // offset of the first non-space
size_t ft_rstrip(const char *s, size_t n);  // end of the last non-space

// Python str.splitlines, one line at a time: returns 1 with the line in
// [*ls, *le) and *pos advanced past its break, 0 when no line is left.
int ft_next_line(const char *s, size_t n, size_t *pos, size_t *ls, size_t *le);

// ---------------------------------------------------------------- words
// A token of the word tokenizer, a byte range of the text.
enum {
    FT_NONSYM = 1,  // has a code point outside PUNCTUATION_SET (a "word" to datatrove's Gopher filter)
    FT_ALPHA = 2,   // has a letter (str.isalpha)
};
typedef struct {
    uint32_t off, len;  // bytes
    uint32_t cps;       // code points
    uint32_t flags;
} FtToken;

// Splits s[0..n) into tokens (an FtToken array in out, cleared first):
// whitespace separates; punctuation and symbols (Unicode P*, S* and control
// characters) are tokens of their own, one code point each except that runs of
// '.' and of '-' stay together ("...", "--"), as NLTK keeps them; punctuation
// with a word character on both sides stays inside the word ("don't",
// "well-known", "3.14", "and/or"). Returns the number of tokens, -1 when out of
// memory or when s is 4 GiB or longer.
long ft_tokenize(const char *s, size_t n, KilnBuf *out);

// The end of the sentence that starts at pos in s[0..n): just past a run of
// . ! ? (with any closing quotes and brackets after it) that is followed by
// whitespace and then a character that is not a lowercase letter, unless the
// run is one '.' after an initial ("J.") or a common abbreviation ("Mr.",
// "etc."); n when no such break follows.
size_t ft_sentence_end(const char *s, size_t n, size_t pos);
// Sentences in s[0..n): non-blank pieces between sentence ends.
long ft_count_sentences(const char *s, size_t n);

// ---------------------------------------------------------------- string map
// A read-only-after-build set of byte strings, each with an int value; lookups
// are thread-safe.
typedef struct {
    uint64_t *hash;
    int32_t *slot;  // index into keys, -1 empty
    char **keys;
    size_t *klen;
    int *vals;
    size_t n, mask;
} FtStrMap;
// Builds the map from n keys (copied); a repeated key keeps its first value.
int ft_strmap_build(FtStrMap *m, const char *const *keys, const size_t *klens, const int *vals, size_t n);
void ft_strmap_free(FtStrMap *m);
// The value of key s[0..n), or -1.
int ft_strmap_get(const FtStrMap *m, const char *s, size_t n);

#endif
