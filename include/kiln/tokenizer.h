// tokenizer.h: byte-level BPE, exact against tiktoken and Hugging Face tokenizers.
//
//   text --pre-tokenizer regex (PCRE2, JIT)--> pieces --BPE merges--> ids
//
// A piece starts as one token per byte and adjacent pairs merge by priority,
// lowest first (leftmost on ties), until no listed pair remains. The pair table
// comes from the file: for tiktoken rank files any two tokens whose bytes join
// into a token merge with that token's rank (tiktoken's rule), and a piece that
// is itself a token is taken whole; for tokenizer.json files the listed merges
// in order. Bytes the regex does not match (invalid UTF-8) are encoded as their
// own pieces, so encode -> decode returns any byte string unchanged.
#ifndef KILN_TOKENIZER_H
#define KILN_TOKENIZER_H

#include "kiln/core.h"
#include "kiln/doc.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct KilnTokenizer KilnTokenizer;

// Loads a tiktoken rank file (NAME.tiktoken, with NAME.json beside it giving
// pat_str and special_tokens, as in shared/data/tokenizers) or an HF tokenizer.json,
// chosen by the file's extension.
int tokenizer_load(KilnTokenizer **tok, const char *path, KilnErr *err);
void tokenizer_free(KilnTokenizer *tok);
// Writes tok as a Hugging Face tokenizer.json (byte-level BPE) that HF tokenizers
// loads and encodes with exactly as kiln does; same tokenizer, same bytes.
// Written atomically. Tokenizers from tiktoken rank files get one merge per
// token (the last merge of BPE on its bytes) and ignore_merges, HF's form of
// tiktoken's whole-token rule.
int tokenizer_save_json(const KilnTokenizer *tok, const char *path, KilnErr *err);

int tokenizer_vocab_size(const KilnTokenizer *tok);  // largest id + 1
// The bytes of an id (NULL and *len = 0 for an unused id).
const uint8_t *tokenizer_token_bytes(const KilnTokenizer *tok, int id, int *len);
// The id of a special token's text, or -1.
int tokenizer_special_id(const KilnTokenizer *tok, const char *text);

typedef enum {
    KILN_SPECIAL_ERROR,  // special-token text in the input is an error (tiktoken's encode default)
    KILN_SPECIAL_ALLOW,  // special-token text becomes its special id
    KILN_SPECIAL_TEXT,   // special-token text is ordinary text (tiktoken's encode_ordinary)
} KilnSpecialMode;

// A growable id buffer.
typedef struct {
    uint32_t *ids;
    long n, cap;
} KilnIds;
void ids_free(KilnIds *ids);
int ids_push(KilnIds *ids, uint32_t id);  // -1 when out of memory
int ids_append(KilnIds *ids, const uint32_t *src, long n);

// Appends the ids of text[0..len) to out. Thread-safe: a tokenizer may be shared.
int tokenizer_encode(const KilnTokenizer *tok, const char *text, size_t len, KilnSpecialMode mode,
                     KilnIds *out, KilnErr *err);
// tiktoken's encode(text, allowed_special={...}): the listed special tokens become
// their ids, any other special-token text is an error.
int tokenizer_encode_allowed(const KilnTokenizer *tok, const char *text, size_t len,
                             const char *const *allowed, int n_allowed, KilnIds *out, KilnErr *err);
// Encodes n texts on all threads; out[i] receives the ids of texts[i]. On an
// error, *failed_at (when not NULL) is the first text that failed, from 0.
int tokenizer_encode_batch(const KilnTokenizer *tok, const char *const *texts, const size_t *lens,
                           int n, KilnSpecialMode mode, KilnIds *out, int *failed_at, KilnErr *err);
// Appends the bytes of ids to a malloc'd buffer; fails only on an id outside the vocabulary.
int tokenizer_decode(const KilnTokenizer *tok, const uint32_t *ids, long n, char **out,
                     size_t *out_len, KilnErr *err);

// ---- training ----
typedef struct {
    int vocab_size;               // total ids: 256 bytes + merges + specials
    const char *pattern;          // pre-tokenizer regex (see tokenizer_pattern_by_name)
    const char *const *specials;  // special tokens, given the last ids
    int n_special;
    long long min_frequency;      // a pair must occur at least this often to merge
    const char *text_field;       // JSONL field holding the text (default "text")
    FILE *log;                    // progress lines, or NULL
    KilnSkips *skips;             // out: JSONL lines that are not documents, or NULL
} KilnBpeTrainOptions;

// Trains a byte-level BPE on text files (each one document) and JSONL files
// (doc_is_jsonl_path; plain, gzip or zstd; one document per line, read by
// KilnDocReader, so lines that are not documents are skipped, not fatal).
// Deterministic: the same input gives the same tokenizer.
int tokenizer_train(KilnTokenizer **tok, const char *const *files, int nfiles,
                    const KilnBpeTrainOptions *opt, KilnErr *err);
// The pre-tokenizer regex of "gpt2", "cl100k" or "o200k"; NULL for other names.
const char *tokenizer_pattern_by_name(const char *name);

#endif
