// fuzz_wordlist: a word list (wordlist_open: one word or phrase per line,
// UTF-8 checked, lowercased, indexed), then matching a text against it.
#include "fuzz_util.h"
#include "kiln/wordlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fuzz_write("words", data, size, path, sizeof path);
    KilnErr err;
    KilnWordList *w;
    if (wordlist_open(&w, path, &err)) return 0;
    static const char text[] = "An S & M test, a bad-word and the assistant; \xc3\x89T\xc3\x89 a b c";
    wordlist_matches(w, text, sizeof text - 1);
    wordlist_free(w);
    return 0;
}
