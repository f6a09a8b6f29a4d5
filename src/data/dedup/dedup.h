// dedup.h: the cores of the deduplication stages (exact_dedup, minhash_dedup,
// line_dedup), usable without a JSONL reader: each core is fed batches of texts
// in input order (pass 1), then answers per document index what to keep.
// Memory stays bounded: records go through an external sorter that spills
// sorted runs to a work directory when they outgrow the memory budget.
#ifndef KILN_DEDUP_H
#define KILN_DEDUP_H

#include "kiln/core.h"
#include "kiln/data.h"

#include <stddef.h>
#include <stdint.h>

// ---------------------------------------------------------------- normalisation
// datatrove's simplify_text: lowercase; whitespace runs -> one space; punctuation
// deleted (ASCII punctuation and symbols, control characters, Unicode category
// P); diacritics removed (NFD, then combining marks Mn dropped); every digit run
// -> "0"; trimmed. Steps apply in datatrove's order, so "a - b" keeps two spaces
// and "1,000" becomes "0". Writes into out (cleared first); -1 when out of memory.
int dedup_normalize(const char *s, size_t n, KilnBuf *out);

// ---------------------------------------------------------------- stage plumbing
// Documents read in batches (like stages_run_stream) with their texts as arrays
// for the cores.
#define DEDUP_BATCH_DOCS 4096
#define DEDUP_BATCH_BYTES (64u << 20)
typedef struct {
    KilnDoc *docs;
    const char **texts;
    size_t *lens;
    int n;
} DedupBatch;
int dedup_batch_alloc(DedupBatch *b, KilnErr *err);
int dedup_batch_read(DedupBatch *b, KilnDocReader *r, KilnErr *err);  // b->n = 0 at the end
void dedup_batch_free(DedupBatch *b);
int dedup_read_batch(KilnDocReader *r, KilnDoc *docs, int max, size_t max_bytes, int *n, KilnErr *err);
// One pass over a JSONL input: fn gets each batch in order (first = the index
// of its first document) while the next batch is read in a task; fn runs inside
// a parallel region, so its loops go through dedup_parallel_for. skips (may be
// NULL) receives the reader's skipped lines.
typedef int (*DedupBatchFn)(void *ctx, DedupBatch *b, long first, KilnErr *err);
int dedup_pass(const char *in_path, DedupBatchFn fn, void *ctx, KilnSkips *skips, KilnErr *err);
// fn(ctx, i, thread) for i in [0, n) on all threads: a parallel loop, or a
// taskloop inside a parallel region. thread < dedup_team_size() indexes scratch.
void dedup_parallel_for(int n, void (*fn)(void *ctx, int i, int thread), void *ctx);
int dedup_team_size(void);
double dedup_cpu_seconds(void);  // process CPU time: all threads together
// A stage's report: *json (the old one freed) becomes head ("{...," with the
// stage's own fields), "input_skipped":N,"input_skip_examples":[...] and '}'.
// -1 when out of memory (*json unchanged).
int dedup_report_json(char **json, const char *head, const KilnSkips *s);
// The writing pass: d goes to out and is counted in rep (docs_out, bytes_out).
int dedup_keep(KilnDocWriter *out, KilnStageReport *rep, const KilnDoc *d, KilnErr *err);
// After the writing pass: each of the `in` documents pass 1 saw was either
// written or dropped with a reason in rep; otherwise in_path changed between
// passes ("STAGE: PATH changed between passes (N documents, then M)").
int dedup_check_seen(const KilnStageReport *rep, long in, const char *stage, const char *in_path, KilnErr *err);

// ---------------------------------------------------------------- external sort
// Fixed-size records of `words` uint64 values, sorted lexicographically (word 0
// first). Records are kept in memory up to mem_bytes (radix sort needs twice the
// records' size, so a chunk holds mem_bytes/2); beyond, sorted runs are spilled
// to one file in work_dir and merged on reading.
typedef struct KilnSorter KilnSorter;
int sorter_open(KilnSorter **s, int words, size_t mem_bytes, const char *work_dir, const char *name, KilnErr *err);
int sorter_push(KilnSorter *s, const uint64_t *recs, size_t n, KilnErr *err);
int sorter_finish(KilnSorter *s, KilnErr *err);  // no pushes after this
// 1: *rec points at the next record (valid until the next call); 0: the end; -1: error.
int sorter_next(KilnSorter *s, const uint64_t **rec, KilnErr *err);
long sorter_runs(const KilnSorter *s);   // runs spilled to disk (0: it all fit in memory)
long sorter_count(const KilnSorter *s);  // records pushed
void sorter_close(KilnSorter *s);        // removes the spill file
// In-memory LSD radix sort of n records (tmp: room for n records).
void radix_sort_records(uint64_t *recs, uint64_t *tmp, size_t n, int words);

// ---------------------------------------------------------------- exact dedup
// XXH3-128 of the normalised text; the first document of each hash is kept.
typedef struct KilnExactDedup KilnExactDedup;
int exact_open(KilnExactDedup **x, size_t mem_bytes, const char *work_dir, KilnErr *err);
int exact_add(KilnExactDedup *x, const char *const *texts, const size_t *lens, int n, KilnErr *err);
int exact_finish(KilnExactDedup *x, KilnErr *err);
int exact_is_dup(const KilnExactDedup *x, long idx);  // after finish
long exact_docs(const KilnExactDedup *x);
long exact_dups(const KilnExactDedup *x);
long exact_runs(const KilnExactDedup *x);  // sorted runs spilled
void exact_close(KilnExactDedup *x);

// ---------------------------------------------------------------- near dedup
typedef struct {
    int ngram, num_perm, bands, rows;
    double threshold;  // Jaccard similarity that makes two documents near-duplicates
    double verify_z;   // a candidate's estimate may fall this many standard deviations below it
    size_t mem_bytes;
    uint64_t seed;
} KilnNearParams;

typedef struct {
    long docs, clusters, docs_in_clusters, candidate_pairs, verified_pairs, skipped_empty, spilled_runs;
    double seconds_signatures, seconds_cluster;
} KilnNearStats;

typedef struct KilnNearDedup KilnNearDedup;
int near_open(KilnNearDedup **nd, const KilnNearParams *p, const char *work_dir, KilnErr *err);
// Pass 1: signatures of a batch (on all threads), appended to the signature
// file; band records to one file per band.
int near_add(KilnNearDedup *nd, const char *const *texts, const size_t *lens, int n, KilnErr *err);
// Pass 2: per band, sort, verify candidates, union-find.
int near_cluster(KilnNearDedup *nd, KilnErr *err);
// After near_cluster: the smallest document index of idx's cluster (idx itself
// when it is the one kept).
long near_rep(const KilnNearDedup *nd, long idx);
const KilnNearStats *near_stats(const KilnNearDedup *nd);
void near_close(KilnNearDedup *nd);

// ---------------------------------------------------------------- line dedup
enum { LINE_UNIT_LINE, LINE_UNIT_PARAGRAPH };
typedef struct {
    int unit;          // LINE_UNIT_*
    long min_docs;     // a unit is removed when it occurs in at least this many documents
    long min_chars;    // shorter units (normalised, in characters) are never removed
    long min_words;    // a document left with fewer words is dropped
    size_t mem_bytes;
} KilnLineParams;

typedef struct {
    long docs, units, units_removed, bytes_removed, docs_changed, spilled_runs;
} KilnLineStats;

typedef struct KilnLineDedup KilnLineDedup;
int line_open(KilnLineDedup **ld, const KilnLineParams *p, const char *work_dir, KilnErr *err);
int line_add(KilnLineDedup *ld, const char *const *texts, const size_t *lens, int n, KilnErr *err);
int line_finish(KilnLineDedup *ld, KilnErr *err);
// Pass 3, in input order, batch after batch (first = index of texts[0]):
// keep[i] = 1: unchanged; 2: outs[i] holds the text without its repeated units;
// 0: dropped, it fell under min_words after losing some. gone (may be NULL):
// gone[i] receives the units document i lost (for keep 2 and 0). Runs on all
// threads.
int line_rewrite(KilnLineDedup *ld, long first, const char *const *texts, const size_t *lens, int n, KilnBuf *outs,
                 KilnBuf *gone, unsigned char *keep, KilnErr *err);
const KilnLineStats *line_stats(const KilnLineDedup *ld);
void line_close(KilnLineDedup *ld);

#endif
