// wordlist.h: the matcher of the `wordlist` pipeline stage (wordlist.c) on its
// own, to score text outside a pipeline (e.g. the toxicity of generations).
// Same rules as the stage: text and list are lowercased and cut into tokens
// (runs of letters, marks, digits and '_'; every other non-space character
// alone), an entry matches as a whole token sequence across any whitespace
// ("ass" does not match inside "assistant"; "s&m" matches "S & M"), longest
// entry first, matches do not overlap.
#ifndef KILN_WORDLIST_H
#define KILN_WORDLIST_H

#include "kiln/core.h"

typedef struct KilnWordList KilnWordList;

// Reads a list with one word or phrase per line (e.g. ../shared/data/toxicity/ldnoobw/en);
// errors name the file (and line for an entry that is not UTF-8).
int wordlist_open(KilnWordList **w, const char *path, KilnErr *err);
void wordlist_free(KilnWordList *w);
// The number of list entries found in text[0..len); -1 when out of memory.
// Read-only on w, so any number of threads may call it on one list.
long wordlist_matches(const KilnWordList *w, const char *text, size_t len);

#endif
