// decontam.h: an n-gram index of evaluation items, to find benchmark text in
// training documents (the `decontaminate` stage) and to score evaluations on
// their clean subset (the items the stage reported as found).
//
// Words, as GPT-3 and lm-evaluation-harness's decontamination define them: the
// text is split on whitespace (Unicode whitespace, as Python's str.split),
// each piece lowercased (Unicode simple case mapping) with its punctuation
// deleted (ASCII punctuation and Unicode categories P*), so "Janet’s" and
// "janets" are one word; pieces that are only punctuation vanish.
//
// N-grams: n consecutive words. Each word is hashed with XXH3-64; an n-gram's
// hash is a polynomial over its word hashes (mod 2^64, then mixed), so a
// document is scanned with a rolling window at O(1) per word and window length.
//
// Items: an item has one or more texts (HellaSwag: context + gold ending; PIQA:
// goal + each solution; the task file's `decontaminate` section says which).
// A text of >= n words contributes all its n-grams; one of min_item_words..n-1
// words is one n-gram of its own length, the whole text
// (GPT-3: "or that overlap with the whole example when it is shorter than
// 13-grams"); a shorter one is not indexed (counted as too short).
#ifndef KILN_DECONTAM_H
#define KILN_DECONTAM_H

#include "kiln/core.h"

#include <stddef.h>
#include <stdint.h>

#define DECONTAM_MAX_N 64      // longest n-gram (words)
#define DECONTAM_MAX_TASKS 64  // tasks in one index

// ---------------------------------------------------------------- reading evaluation sets
// One evaluation item: its id ("task/index", or "task/<dataset id>" where the
// set has one, e.g. HellaSwag's ind) and the texts a model is shown.
typedef int (*KilnEvalItemFn)(void *ctx, const char *task, const char *id, const char *const *texts,
                              const size_t *lens, int ntexts, KilnErr *err);

// Reads the items of one evaluation file and calls fn on each (fn returning -1
// stops the read with its error). spec:
//   PATH                     format and task from the path (hellaswag, lambada,
//                            gsm8k or piqa in it)
//   TASK=PATH                the task named; format from TASK, else from PATH
//   [TASK=]FORMAT:PATH       FORMAT one of hellaswag, lambada, gsm8k, piqa
//   [TASK=]jsonl:F1+F2=PATH  any JSONL; the item is its string fields F1, F2...
//                            joined by spaces; the id field "id" if present
//                            (task from the file name when not given)
// A FORMAT is a benchmark read through its task file (kiln/task.h,
// task_decontam_items; the file found as `kiln eval` finds it): hellaswag,
// lambada (tasks/lambada_openai.yaml), gsm8k, piqa. Its dataset reader, ids
// and `decontaminate` section give the items and their texts, so they are the
// items `kiln eval` scores: HellaSwag ctx + gold ending (preprocessed; every
// ending without a label), id "hellaswag/<ind>"; LAMBADA text; GSM8K question
// + answer, and without the calculator annotations <<...>> when it has any;
// PIQA goal + each solution. Ids of the other sets are "task/<0-based record
// index>" (blank lines are not records); a TASK given replaces the id's part
// before its '/'. A line that is not a JSON object, or lacks a field, is an
// error naming the file and line. *task_out (if not NULL) receives the task
// name (malloc'd).
int decontam_read_eval(const char *spec, KilnEvalItemFn fn, void *ctx, char **task_out, KilnErr *err);

// Splits text into its normalised words and calls fn(ctx, word, len, start,
// end) for each: word[0..len) the normalised form, [start, end) its bytes in
// text. Exposed so that other tools count words the same way.
typedef void (*KilnWordFn)(void *ctx, const char *word, size_t len, size_t start, size_t end);
long decontam_words(const char *text, size_t len, KilnWordFn fn, void *ctx);
// The index of the first byte at or after i that is not whitespace in Python's
// sense (str.isspace: ASCII and Unicode whitespace).
size_t text_skip_space(const char *t, size_t len, size_t i);

// ---------------------------------------------------------------- the index
typedef struct KilnDecontamIndex KilnDecontamIndex;

// n: words per n-gram (1..DECONTAM_MAX_N); min_item_words: the shortest text
// indexed whole (1..n).
int decontam_index_new(KilnDecontamIndex **ix, int n, int min_item_words, KilnErr *err);
void decontam_index_free(KilnDecontamIndex *ix);
// Adds every item of an evaluation file (spec as decontam_read_eval). A task
// name given twice is an error.
int decontam_index_add_file(KilnDecontamIndex *ix, const char *spec, KilnErr *err);
// Adds one item under task (created on first use); returns its number, or -1.
long decontam_index_add_item(KilnDecontamIndex *ix, const char *task, const char *id, const char *const *texts,
                             const size_t *lens, int ntexts, KilnErr *err);
// Builds the lookup table; after this the index is read-only (and may be shared
// by threads) and no more items can be added.
int decontam_index_build(KilnDecontamIndex *ix, KilnErr *err);

int decontam_n(const KilnDecontamIndex *ix);
int decontam_ntasks(const KilnDecontamIndex *ix);
const char *decontam_task_name(const KilnDecontamIndex *ix, int task);
const char *decontam_task_file(const KilnDecontamIndex *ix, int task);  // spec it came from, or ""
long decontam_task_items(const KilnDecontamIndex *ix, int task);
long decontam_task_too_short(const KilnDecontamIndex *ix, int task);     // items with no text indexed
long decontam_nitems(const KilnDecontamIndex *ix);
const char *decontam_item_id(const KilnDecontamIndex *ix, long item);
int decontam_item_task(const KilnDecontamIndex *ix, long item);
long decontam_item_find(const KilnDecontamIndex *ix, const char *id);    // -1 when unknown
long decontam_nngrams(const KilnDecontamIndex *ix);  // distinct n-gram hashes
size_t decontam_index_bytes(const KilnDecontamIndex *ix);

// ---------------------------------------------------------------- matching
// One n-gram of a text found in the index: its bytes [start, end) in the text
// (from the first byte of its first word to the last byte of its last word)
// and the items (sorted, distinct) that contain it.
typedef struct {
    size_t start, end;
    const uint32_t *items;
    int nitems;
} KilnNgramHit;
// Calls hit(ctx, &h) for every indexed n-gram of text, in increasing start
// (longest first at one start); hit returning nonzero stops the scan. Returns
// the number of hits, or -1 when stopped. Thread-safe on a built index.
long decontam_scan(const KilnDecontamIndex *ix, const char *text, size_t len,
                   int (*hit)(void *ctx, const KilnNgramHit *h), void *ctx);

#endif
