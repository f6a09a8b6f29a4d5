// corpus.h: documents to token shards with a manifest. Documents stream in,
// are encoded on all threads, and fill llm.c shards of a fixed token count
// (train_NNNNNN.bin, val_NNNNNN.bin); manifest.json lists every shard (path,
// sha256, tokens) and, per shard, each document's source, id and token range,
// so a training batch can be traced back to the documents it came from.
//
// Every document starts with <|endoftext|> when the tokenizer has it (GPT-2's
// convention); in byte mode (no tokenizer, vocab 256) with token 0 (NUL), which
// cleaned text never contains. Validation documents are chosen by a hash of
// (seed, source, id), so the split is stable when the corpus grows; or, with
// val_last_tokens, validation is the last val_fraction of all tokens (`kiln
// tokenizer encode-corpus`, nanoGPT's split of one text), which needs every
// token held until corpus_writer_finish.
#ifndef KILN_CORPUS_H
#define KILN_CORPUS_H

#include "kiln/doc.h"
#include "kiln/tokenizer.h"

#include <limits.h>
#include <stdio.h>

#define KILN_CORPUS_ONE_SHARD LONG_MAX  // shard_tokens for one shard per split

typedef struct {
    const char *out_dir;
    const KilnTokenizer *tok;  // NULL: one token per byte
    const char *tok_name;      // the tokenizer's path (from the current directory), or "bytes"; the manifest
                               // records a path relative to its own directory, so it resolves from anywhere
    long shard_tokens;         // tokens per shard (the last one may be shorter)
    double val_fraction;       // share of documents (with val_last_tokens: of tokens) held out for validation
    uint64_t seed;
    KilnSpecialMode special;   // special-token text in a document (pipelines: KILN_SPECIAL_TEXT, it is text)
    int val_last_tokens;       // validation is the last val_fraction of the tokens; a document may be cut in two
    int no_doc_start;          // no start token before each document: they simply follow each other
    FILE *log;                 // NULL, or where each shard written is told: "wrote PATH (N tokens)"
} KilnCorpusOptions;

typedef struct KilnCorpusWriter KilnCorpusWriter;
int corpus_writer_open(KilnCorpusWriter **w, const KilnCorpusOptions *o, KilnErr *err);
// Encodes docs[0..n) (on all threads) and appends them in order.
int corpus_writer_add(KilnCorpusWriter *w, const KilnDoc *docs, int n, KilnErr *err);
// Writes the last shards and manifest.json (with extra_json, an object's
// members `"key":value,...` or NULL, pasted in), then frees w.
int corpus_writer_finish(KilnCorpusWriter *w, const char *extra_json, KilnErr *err);
void corpus_writer_abort(KilnCorpusWriter *w);
// Totals so far: tokens and documents, train + val.
long corpus_writer_tokens(const KilnCorpusWriter *w);
long corpus_writer_docs(const KilnCorpusWriter *w);

#endif
