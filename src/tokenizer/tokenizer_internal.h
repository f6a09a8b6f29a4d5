// tokenizer_internal.h: the tokenizer's state, shared by the files of src/tokenizer.
#ifndef KILN_TOKENIZER_INTERNAL_H
#define KILN_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include "kiln/tokenizer.h"

#include <pcre2.h>

// bytes -> id, open addressing over a power-of-two table
typedef struct {
    uint64_t *hash;  // 0 = empty slot
    int32_t *id;
    uint64_t mask;
} TokenMap;

// (left id, right id) -> (priority, merged id)
typedef struct {
    uint64_t *key;   // UINT64_MAX = empty slot
    uint32_t *prio;
    uint32_t *id;
    uint64_t mask;
} PairMap;

struct KilnTokenizer {
    int n_vocab;              // largest id + 1
    uint8_t *blob;            // token bytes, back to back
    uint64_t blob_used, blob_cap;
    uint64_t *off;            // per id: offset into blob
    uint32_t *len;            // per id: byte length, 0 = unused id
    TokenMap tokens;          // ordinary tokens only (not specials)
    PairMap pairs;
    int32_t byte_id[256];     // the token of each single byte
    int whole_piece;          // a piece that is a token is taken whole (tiktoken)
    char *pattern;
    pcre2_code *re;
    int n_special;
    char **special;           // special-token texts
    int *special_len;
    int *special_id;
};

// Builders used by the file loaders.
int tok_init(KilnTokenizer *t, int n_vocab, size_t blob_bytes, KilnErr *err);
int tok_set_token(KilnTokenizer *t, int id, const uint8_t *bytes, int len, KilnErr *err);
int tok_add_special(KilnTokenizer *t, const char *text, int id, KilnErr *err);
// Sizes the pair table for about n pairs; call before tok_add_pair.
int tok_alloc_pairs(PairMap *p, uint64_t n, KilnErr *err);
int tok_add_pair(KilnTokenizer *t, int left, int right, uint32_t prio, int id, KilnErr *err);
// After every token is set: the bytes map, single-byte ids, (for rank files) pairs.
int tok_finish(KilnTokenizer *t, int pairs_from_ranks, KilnErr *err);
int tok_compile_pattern(KilnTokenizer *t, const char *pattern, KilnErr *err);
int32_t tok_lookup(const KilnTokenizer *t, const uint8_t *bytes, size_t len);

// Matching state for one thread, reused across texts (creating it costs more
// than encoding a short document).
typedef struct {
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *js;
} TokScratch;
int tok_scratch_init(TokScratch *s, const pcre2_code *re);
void tok_scratch_free(TokScratch *s);
// Pre-tokenizes text: each regex match, and each run of bytes between matches
// (invalid UTF-8), goes to fn in order. fn returns non-zero only when out of memory.
int tok_split(const pcre2_code *re, const uint8_t *text, size_t n, TokScratch *sc,
              int (*fn)(void *ctx, const uint8_t *piece, size_t len), void *ctx, KilnErr *err);

// BPE of one piece, appending ids to out.
int bpe_encode_piece(const KilnTokenizer *t, const uint8_t *p, size_t n, KilnIds *out);


int tiktoken_load(KilnTokenizer *t, const char *path, KilnErr *err);
// A Hugging Face tokenizer.json holding a byte-level BPE (hf_json.c).
int hf_json_load(KilnTokenizer *t, const char *path, KilnErr *err);

#endif
