// classifier.h: a fastText-style linear text classifier (Joulin et al. 2016,
// "Bag of Tricks for Efficient Text Classification") for quality and toxicity
// filtering.
//
// Features: lowercased tokens (runs of letters/digits/non-ASCII bytes, or runs
// of ASCII punctuation), fastText's end-of-line token "</s>" for each newline
// and at the end of the text, and the word n-grams of 2..word_ngrams tokens,
// all hashed into `buckets` rows of a dim-wide embedding table (the hashing
// trick). A document's vector is the mean of its feature rows; a linear layer
// without bias (the "</s>" row serves as one) maps it to the labels: softmax,
// or a single logistic output when there are two labels.
// Training is plain SGD over shuffled examples with a learning rate decaying
// linearly to 0, as fastText does. It runs on one thread and is bit-for-bit
// deterministic for a seed (on one build).
//
// Only rows that occur in the training data are stored (the model file and the
// loaded model hold those rows plus a bucket -> row index), so the default 2^21
// buckets cost 8 MiB of index, not 256 MiB of table.
#ifndef KILN_CLASSIFIER_H
#define KILN_CLASSIFIER_H

#include "kiln/core.h"
#include "kiln/doc.h"

#include <stddef.h>
#include <stdint.h>

#define KILN_CLS_MAX_NGRAMS 8
#define KILN_CLS_MAX_LABELS 1024
#define KILN_CLS_MAX_DIM 1024
#define KILN_CLS_MAX_BUCKETS (1L << 26)

typedef struct {
    int dim;          // embedding width (32)
    int epoch;        // passes over the training set (5, fastText's default)
    double lr;        // initial learning rate, decays linearly to 0 (0.2)
    int word_ngrams;  // longest word n-gram (2)
    long buckets;     // hash buckets for all features (2^21)
    uint64_t seed;    // initialisation and shuffling (1)
} KilnClsOpts;

void classifier_opts_default(KilnClsOpts *o);
// An error naming the first option out of range.
int classifier_opts_check(const KilnClsOpts *o, KilnErr *err);

// Labelled examples with their features already hashed (bucket ids), so epochs
// do not tokenize again. Build with clsset_add; the same set can train a model
// and evaluate any model hashed with the same word_ngrams and buckets.
typedef struct {
    int word_ngrams;
    uint32_t buckets;
    uint32_t *feat;   // all examples' bucket ids, concatenated
    size_t nfeat, capfeat;
    size_t *start;    // example i: feat[start[i] .. start[i + 1])
    int *label;
    size_t n, cap;
    long tokens;      // tokens over all examples
} KilnClsSet;

void clsset_init(KilnClsSet *s, int word_ngrams, long buckets);
int clsset_add(KilnClsSet *s, const char *text, size_t len, int label, KilnErr *err);
void clsset_free(KilnClsSet *s);

// The hashed features of a text, for tests and tools: writes up to cap bucket
// ids to out and returns how many the text has (which may exceed cap).
size_t classifier_features(const char *text, size_t len, int word_ngrams, uint32_t buckets, uint32_t *out,
                           size_t cap);

typedef struct KilnClassifier KilnClassifier;

typedef struct {
    double loss;        // mean cross-entropy over the last epoch
    long examples;      // trained examples per epoch (empty texts are skipped)
    long tokens;        // tokens per epoch
    double seconds;
    double tokens_per_s;  // all epochs
} KilnClsTrainStats;

// Trains on `train` (labels are indexes into labels[0..nlabels), nlabels >= 2).
int classifier_train(KilnClassifier **out, const KilnClsOpts *o, const char *const *labels, int nlabels,
                     const KilnClsSet *train, KilnClsTrainStats *stats, KilnErr *err);
void classifier_free(KilnClassifier *m);

int classifier_nlabels(const KilnClassifier *m);
const char *classifier_label(const KilnClassifier *m, int i);
int classifier_find_label(const KilnClassifier *m, const char *name);  // -1 when absent
int classifier_dim(const KilnClassifier *m);
int classifier_word_ngrams(const KilnClassifier *m);
long classifier_buckets(const KilnClassifier *m);
long classifier_rows(const KilnClassifier *m);  // stored embedding rows

// probs[0..nlabels) = p(label | text); they sum to 1. Read-only on m, so any
// number of threads may predict with one model. Returns the argmax label.
// Features the training data never had are left out of the mean; a text with
// none known (possible only with a model that never saw "</s>") gets uniform
// probabilities.
int classifier_predict(const KilnClassifier *m, const char *text, size_t len, float *probs);
// The same on features already hashed with the model's word_ngrams and buckets.
int classifier_predict_feats(const KilnClassifier *m, const uint32_t *feat, size_t n, float *probs);

// Evaluation on a set; the binary figures treat label `positive` as positive.
typedef struct {
    long n;
    double loss, accuracy;
    long tp, fp, fn, tn;
    double precision, recall, f1, auc;  // only for two labels
} KilnClsMetrics;
int classifier_eval(const KilnClassifier *m, const KilnClsSet *set, int positive, KilnClsMetrics *out,
                    KilnErr *err);

// Model file: "KILNCLS1" magic, version, sizes, labels, stored rows (bucket
// ids, then the vectors), output layer and an XXH3-64 checksum, little-endian; written atomically. Loading checks every size
// against the file length, the checksum, and that all weights are finite; the
// error names the file.
int classifier_save(const KilnClassifier *m, const char *path, KilnErr *err);
int classifier_load(KilnClassifier **out, const char *path, KilnErr *err);

// ---------------------------------------------------------------- JSONL documents
// Labelled data comes as JSONL files of documents (kiln/doc.h), one label per
// file; the held-out share is chosen per document, by a hash, so it does not
// depend on the order or the number of files.
typedef struct {
    const char *label, *path;
} KilnClsFile;

typedef struct {
    const KilnClsFile *files;
    int nfiles;
    const char *field;      // the JSONL text field ("text")
    uint64_t seed;          // the split's hash seed (the training seed)
    double valid_fraction;  // held-out share in [0, 1)
} KilnClsData;

// Held out for validation when a hash of (seed, source, id) falls under fraction.
int classifier_held_out(const KilnDoc *d, uint64_t seed, double fraction);

// Reads every file of d into train, or into valid for the documents
// classifier_held_out picks (valid NULL: all into train). A file's label is
// found in labels[0..nlabels) (an error when it is not there); per_label[i]
// counts label i's documents; skips[f] (when skips is not NULL) gets file f's
// skipped lines, for the files read before an error too.
int classifier_read_files(const KilnClsData *d, const char *const *labels, int nlabels, KilnClsSet *train,
                          KilnClsSet *valid, long *per_label, KilnSkips *skips, KilnErr *err);

// Prediction over a JSONL file: each document written again with "label" (the
// most likely label) and "score" (p(positive)) added (other input fields are
// not carried over), or with tsv lines `source TAB id TAB label TAB p(label)`.
typedef struct {
    const char *input;   // JSONL documents; "-" = stdin
    const char *output;  // written atomically; "-" or NULL = stdout
    const char *field;   // the JSONL text field
    int positive;        // the label whose probability is "score"
    int tsv;
} KilnClsPredictOpts;

typedef struct {
    int streamed;       // every document was read, predicted and written (only the commit may have failed)
    long docs;
    double text_bytes;
    double seconds;     // in classifier_predict only
    KilnSkips skips;    // the input's skipped lines
} KilnClsPredictStats;

int classifier_predict_jsonl(const KilnClassifier *m, const KilnClsPredictOpts *o, KilnClsPredictStats *st,
                             KilnErr *err);

#endif
