// cmd_data_classifier.c: `kiln data classifier train|eval|predict`, the
// fastText-style quality/toxicity classifier of classifier.h on JSONL files.
#include "cli/cli.h"

#include "core/parse.h"
#include "kiln/classifier.h"
#include "kiln/doc.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: kiln data classifier train --label NAME=FILE.jsonl ... -o MODEL.kcls [options]\n"
    "       kiln data classifier eval -m MODEL.kcls --label NAME=FILE.jsonl ...\n"
    "       kiln data classifier predict -m MODEL.kcls [-i IN.jsonl] [-o OUT.jsonl] [--tsv]\n"
    "\n"
    "A fastText-style classifier (hashed word n-grams, averaged embeddings, linear\n"
    "softmax / logistic layer, SGD). Give each label one or more JSONL files; the\n"
    "first label is the positive one for precision/recall/F1/AUC unless a label is\n"
    "named hq or --positive says otherwise.\n"
    "\n"
    "train options (defaults):\n"
    "  --field NAME          JSONL text field (text)\n"
    "  --dim N               embedding width (32)\n"
    "  --epoch N             passes over the data (5)\n"
    "  --lr X                initial learning rate, decays linearly to 0 (0.2)\n"
    "  --wordNgrams N        longest word n-gram (2)\n"
    "  --buckets N           hash buckets (2097152)\n"
    "  --seed N              initialisation, shuffling and the split (1)\n"
    "  --valid-fraction F    held-out share, chosen by a hash of (seed, source, id) (0.1)\n"
    "  --positive NAME       the positive label for binary metrics\n"
    "Training is single-threaded and bit-reproducible for a seed.\n"
    "\n"
    "predict writes each document with \"label\" (the most likely label) and \"score\"\n"
    "(p(positive label)) added, or with --tsv lines: source, id, label, probability.\n"
    "Input fields other than source, id and text are not carried over.\n"
    "\n"
    "In a pipeline, the `classifier` stage filters with a model: parameters model,\n"
    "label, mode (threshold | pareto), threshold (0.5), pareto_alpha (9), invert.\n";

typedef struct {
    KilnClsOpts opts;
    KilnClsFile *files;
    int nfiles;
    const char *field, *model, *output, *input, *positive;
    double valid_fraction;
    int tsv;
} Args;

static int parse_long(const char *opt, const char *s, long lo, long hi, long *out) {
    if (kiln_parse_long(s, lo, hi, out))
        return cli_error("classifier: %s wants an integer in [%ld, %ld], got '%s'", opt, lo, hi, s);
    return 0;
}

static int parse_double(const char *opt, const char *s, double *out) {
    if (kiln_parse_double(s, out)) return cli_error("classifier: %s wants a number, got '%s'", opt, s);
    return 0;
}

// One option with its value at argv[*i]; 1 if consumed, -1 on error, 0 if unknown.
static int parse_opt(Args *a, int argc, char **argv, int *i) {
    const char *o = argv[*i];
    if (*i + 1 >= argc) return 0;
    const char *v = argv[*i + 1];
    long n = 0;
    int rc = 0;
    if (!strcmp(o, "--label")) {
        const char *eq = strchr(v, '=');
        if (!eq || eq == v || !eq[1]) return cli_error("classifier: --label wants NAME=FILE, got '%s'", v), -1;
        a->files[a->nfiles].label = strndup(v, (size_t)(eq - v));
        a->files[a->nfiles++].path = eq + 1;
    } else if (!strcmp(o, "--field")) a->field = v;
    else if (!strcmp(o, "-m") || !strcmp(o, "--model")) a->model = v;
    else if (!strcmp(o, "-o") || !strcmp(o, "--output")) a->output = v;
    else if (!strcmp(o, "-i") || !strcmp(o, "--input")) a->input = v;
    else if (!strcmp(o, "--positive")) a->positive = v;
    else if (!strcmp(o, "--dim")) rc = parse_long(o, v, 1, KILN_CLS_MAX_DIM, &n), a->opts.dim = (int)n;
    else if (!strcmp(o, "--epoch")) rc = parse_long(o, v, 1, 100000, &n), a->opts.epoch = (int)n;
    else if (!strcmp(o, "--wordNgrams")) rc = parse_long(o, v, 1, KILN_CLS_MAX_NGRAMS, &n), a->opts.word_ngrams = (int)n;
    else if (!strcmp(o, "--buckets")) rc = parse_long(o, v, 1, KILN_CLS_MAX_BUCKETS, &a->opts.buckets);
    else if (!strcmp(o, "--seed")) rc = parse_long(o, v, 0, __LONG_MAX__, &n), a->opts.seed = (uint64_t)n;
    else if (!strcmp(o, "--lr")) rc = parse_double(o, v, &a->opts.lr);
    else if (!strcmp(o, "--valid-fraction")) {
        rc = parse_double(o, v, &a->valid_fraction);
        if (!rc && !(a->valid_fraction >= 0 && a->valid_fraction < 1))
            rc = cli_error("classifier: --valid-fraction must be in [0, 1), got '%s'", v);
    } else return 0;
    if (rc) return -1;
    (*i)++;
    return 1;
}

static int parse_args(int argc, char **argv, Args *a) {
    memset(a, 0, sizeof *a);
    classifier_opts_default(&a->opts);
    a->field = "text";
    a->valid_fraction = 0.1;
    a->files = calloc((size_t)argc + 1, sizeof *a->files);
    if (!a->files) return cli_error("out of memory");
    for (int i = 2; i < argc; i++) {
        int r = parse_opt(a, argc, argv, &i);
        if (r < 0) return 1;
        if (r == 0 && !strcmp(argv[i], "--tsv")) a->tsv = 1;
        else if (r == 0) return cli_error("classifier %s: unknown option '%s' (or it needs a value); see --help", argv[1], argv[i]);
    }
    return 0;
}

static void free_args(Args *a) {
    for (int i = 0; i < a->nfiles; i++) free((char *)a->files[i].label);
    free(a->files);
}

// Distinct label names of the --label options, in order of first appearance.
static int label_names(const Args *a, const char **names) {
    int n = 0;
    for (int i = 0; i < a->nfiles; i++) {
        int k = 0;
        while (k < n && strcmp(names[k], a->files[i].label)) k++;
        if (k == n) names[n++] = a->files[i].label;
    }
    return n;
}

static int positive_label(const char *const *names, int n, const char *want) {
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], want ? want : "hq")) return i;
    return want ? -1 : 0;
}

// Reads every --label file into the train set (or valid, for held-out documents
// when valid is not NULL), then tells the skipped lines of each file read.
static int read_labelled(const Args *a, const char *const *names, int nnames, KilnClsSet *train, KilnClsSet *valid,
                         long *per_label) {
    KilnErr err;
    KilnClsData d = {a->files, a->nfiles, a->field, a->opts.seed, a->valid_fraction};
    KilnSkips *skips = calloc((size_t)a->nfiles + 1, sizeof *skips);
    if (!skips) return cli_error("out of memory");
    int rc = classifier_read_files(&d, names, nnames, train, valid, per_label, skips, &err);
    for (int f = 0; f < a->nfiles; f++) cli_print_skips(a->files[f].path, &skips[f]);
    free(skips);
    return rc ? cli_error("%s", err.msg) : 0;
}

static void print_metrics(const char *what, const KilnClsMetrics *m, const char *positive) {
    printf("%-6s %7ld examples  loss %.4f  accuracy %.4f\n", what, m->n, m->loss, m->accuracy);
    if (!positive || !m->n) return;
    printf("%-6s positive '%s': precision %.4f  recall %.4f  F1 %.4f  ", what, positive, m->precision, m->recall, m->f1);
    if (isnan(m->auc)) printf("AUC n/a (one label only)\n");
    else printf("AUC %.4f\n", m->auc);
}

static int cmd_train(Args *a) {
    KilnErr err;
    const char *names[KILN_CLS_MAX_LABELS + 1];
    if (!a->output) return cli_error("classifier train: -o MODEL.kcls is required");
    int n = label_names(a, names);
    if (n < 2) return cli_error("classifier train: give at least two labels (--label NAME=FILE.jsonl)");
    if (n > KILN_CLS_MAX_LABELS) return cli_error("classifier train: at most %d labels", KILN_CLS_MAX_LABELS);
    int pos = positive_label(names, n, a->positive);
    if (pos < 0) return cli_error("classifier train: --positive '%s' is not one of the labels", a->positive);
    if (classifier_opts_check(&a->opts, &err)) return cli_error("%s", err.msg);
    KilnClsSet train, valid;
    clsset_init(&train, a->opts.word_ngrams, a->opts.buckets);
    clsset_init(&valid, a->opts.word_ngrams, a->opts.buckets);
    long per_label[KILN_CLS_MAX_LABELS + 1] = {0};
    KilnClassifier *m = NULL;
    KilnClsTrainStats st;
    KilnClsMetrics tm, vm;
    int rc = read_labelled(a, names, n, &train, &valid, per_label);
    if (!rc) {
        printf("documents:");
        for (int i = 0; i < n; i++) printf(" %s %ld", names[i], per_label[i]);
        printf("; %zu train, %zu held out\n", train.n, valid.n);
        if (classifier_train(&m, &a->opts, names, n, &train, &st, &err) ||
            classifier_eval(m, &train, pos, &tm, &err) || (valid.n && classifier_eval(m, &valid, pos, &vm, &err)))
            rc = cli_error("%s", err.msg);
    }
    if (!rc) {
        printf("trained %d epochs in %.2f s: %.0f words/s, last-epoch loss %.4f, %ld rows of %d\n", a->opts.epoch,
               st.seconds, st.tokens_per_s, st.loss, classifier_rows(m), a->opts.dim);
        print_metrics("train", &tm, n == 2 ? names[pos] : NULL);
        if (valid.n) print_metrics("valid", &vm, n == 2 ? names[pos] : NULL);
        if (classifier_save(m, a->output, &err)) rc = cli_error("%s", err.msg);
        else printf("wrote %s\n", a->output);
    }
    classifier_free(m);
    clsset_free(&train);
    clsset_free(&valid);
    return rc;
}

static int load_model(const Args *a, KilnClassifier **m, const char **names, int *pos) {
    KilnErr err;
    if (!a->model) return cli_error("classifier: -m MODEL.kcls is required");
    if (classifier_load(m, a->model, &err)) return cli_error("%s", err.msg);
    int n = classifier_nlabels(*m);
    for (int i = 0; i < n; i++) names[i] = classifier_label(*m, i);
    *pos = positive_label(names, n, a->positive);
    if (*pos < 0) {
        classifier_free(*m);
        return cli_error("classifier: --positive '%s' is not a label of %s", a->positive, a->model);
    }
    return 0;
}

static int cmd_eval(Args *a) {
    KilnErr err;
    KilnClassifier *m;
    const char *names[KILN_CLS_MAX_LABELS + 1];
    int pos;
    if (!a->nfiles) return cli_error("classifier eval: give --label NAME=FILE.jsonl for the model's labels");
    if (load_model(a, &m, names, &pos)) return 1;
    int n = classifier_nlabels(m);
    KilnClsSet set;
    clsset_init(&set, classifier_word_ngrams(m), classifier_buckets(m));
    long per_label[KILN_CLS_MAX_LABELS + 1] = {0};
    KilnClsMetrics mt;
    int rc = read_labelled(a, names, n, &set, NULL, per_label);
    if (!rc && classifier_eval(m, &set, pos, &mt, &err)) rc = cli_error("%s", err.msg);
    if (!rc) print_metrics("eval", &mt, n == 2 ? names[pos] : NULL);
    clsset_free(&set);
    classifier_free(m);
    return rc;
}

static int cmd_predict(Args *a) {
    KilnErr err;
    KilnClassifier *m;
    const char *names[KILN_CLS_MAX_LABELS + 1];
    int pos;
    if (load_model(a, &m, names, &pos)) return 1;
    KilnClsPredictOpts po = {a->input ? a->input : "-", a->output, a->field, pos, a->tsv};
    KilnClsPredictStats st;
    int rc = classifier_predict_jsonl(m, &po, &st, &err);
    classifier_free(m);
    if (rc && !st.streamed) cli_error("%s", err.msg);
    if (st.streamed)
        fprintf(stderr, "classifier predict: %ld documents, %.1f MB of text, %.1f MB/s (one thread, prediction only)\n",
                st.docs, st.text_bytes / 1e6, st.seconds > 0 ? st.text_bytes / 1e6 / st.seconds : 0);
    cli_print_skips(po.input, &st.skips);
    if (rc && st.streamed) cli_error("%s", err.msg);  // the output could not be committed
    return rc ? 1 : 0;
}

int cmd_data_classifier(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2;
    }
    if (cli_wants_help(argc, argv)) {
        fputs(USAGE, stdout);
        return 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "train") && strcmp(sub, "eval") && strcmp(sub, "predict"))
        return cli_error("classifier: no subcommand '%s' (train, eval, predict)", sub);
    Args a;
    int rc = parse_args(argc, argv, &a);
    if (!rc) rc = !strcmp(sub, "train") ? cmd_train(&a) : !strcmp(sub, "eval") ? cmd_eval(&a) : cmd_predict(&a);
    free_args(&a);
    return rc;
}
