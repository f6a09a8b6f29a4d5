// cmd_data.c: `kiln data run PIPELINE.yaml`, `kiln data STAGE [--param v] [IN...]`,
// and the subcommands `gather` and `classifier`.
#include "cli/cli.h"

#include "core/parse.h"
#include "kiln/corpus.h"
#include "kiln/manifest.h"
#include "kiln/data.h"
#include "kiln/pipeline.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void print_stages(FILE *f) {
    int n;
    const KilnStageDef *const *all = stage_all(&n);
    fprintf(f, "stages (per-document unless marked corpus):\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "  %-18s %s%s\n", all[i]->name, all[i]->apply ? "" : "[corpus] ", all[i]->summary);
}

static void usage(FILE *f) {
    fputs("usage: kiln data SUBCOMMAND|STAGE ...   (docs/data.md has it all)\n\n"
          "subcommands:\n"
          "  run PIPELINE.yaml     sources -> stages -> token shards, manifest.json and report.json in out_dir\n"
          "  gather debian         write Debian's text (bible, dictionaries, man pages, python...) as JSONL per source\n"
          "  classifier train|eval|predict   train and inspect the fastText-style quality classifier\n"
          "  trace MANIFEST.json SHARD.bin POS...   the document behind a token position\n"
          "  STAGE [--PARAM VALUE]... [-o OUT.jsonl] [--rejects R.jsonl] [--report R.json] [IN.jsonl...]\n"
          "                        run one stage (below) alone; `kiln data STAGE --help` lists its parameters\n\n"
          "Documents are JSONL lines {\"source\",\"id\",\"text\"} (gzip or zstd inputs are fine);\n"
          "a stage reads files or stdin and writes the kept documents to OUT or stdout, in input\n"
          "order, so stages compose in a shell pipe.\n\n"
          "options of a stage run:\n"
          "  -o FILE            output (default: stdout); written to a temp file beside it, renamed when done\n"
          "  --rejects FILE     dropped documents, each with \"drop\":\"stage:reason\" (line_dedup: also the\n"
          "                     lines it removed from a kept document, under its id)\n"
          "  --report FILE      the stage's counts, drop reasons and skipped input lines as JSON\n"
          "  --text-field NAME  the input's text field (default text)\n"
          "  --source NAME      source for documents without one (default: the file's name)\n"
          "  --seed N           seed for sampling decisions (default 1234)\n"
          "  --work-dir DIR     scratch space of corpus stages (default: $TMPDIR or /tmp)\n\n",
          f);
    print_stages(f);
}

typedef struct {
    const char *out, *rejects, *report, *text_field, *source, *work_dir;
    uint64_t seed;
    const char **inputs;
    int ninputs;
    KilnParams params;
} StageArgs;

static int parse_stage_args(int argc, char **argv, StageArgs *a) {
    KilnErr err;
    a->out = "-";
    a->seed = 1234;
    a->inputs = calloc((size_t)argc + 1, sizeof *a->inputs);
    a->params.stage = strdup(argv[0]);
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(o, "-o") && more) a->out = argv[++i];
        else if (!strcmp(o, "--rejects") && more) a->rejects = argv[++i];
        else if (!strcmp(o, "--report") && more) a->report = argv[++i];
        else if (!strcmp(o, "--text-field") && more) a->text_field = argv[++i];
        else if (!strcmp(o, "--source") && more) a->source = argv[++i];
        else if (!strcmp(o, "--work-dir") && more) a->work_dir = argv[++i];
        else if (!strcmp(o, "--seed") && more) {
            if (kiln_parse_u64(argv[++i], &a->seed))
                return cli_error("--seed wants a non-negative integer, got '%s'", argv[i]);
        } else if (!strncmp(o, "--", 2) && o[2] && more) {
            // --min-words 50 -> parameter min_words
            char key[128];
            snprintf(key, sizeof key, "%s", o + 2);
            for (char *c = key; *c; c++)
                if (*c == '-') *c = '_';
            if (params_add(&a->params, key, argv[++i], "command line", &err)) return cli_error("%s", err.msg);
        } else if (o[0] == '-' && o[1]) {
            return cli_error("%s: unknown option '%s', or it lacks its value (see `kiln data %s --help`)", argv[0],
                             o, argv[0]);
        } else {
            a->inputs[a->ninputs++] = o;
        }
    }
    if (!a->ninputs) a->inputs[a->ninputs++] = "-";
    return 0;
}

// The inputs one after the other, as one document source.
typedef struct {
    const StageArgs *a;
    int cur;
    KilnDocReader *r;
    long repaired;
    KilnSkips skips;  // every input's skipped lines, for the report
    long docs;      // documents of the current input
    int not_jsonl;  // input_check refused an input: bad input, exit 2
} Inputs;

// An input with lines but not one document is refused rather than passed over:
// typically a .json file holding one JSON array (alpaca_5000.json), whose every
// line is skipped, so the stage would "succeed" with 0 documents. Called before
// input_done, which prints the skipped lines and closes the reader.
static int input_check(Inputs *in, KilnErr *err) {
    long skipped = docreader_skips(in->r)->count;
    if (in->docs > 0 || skipped == 0) return 0;
    in->not_jsonl = 1;
    return kiln_fail(err,
                     "%s: none of its %ld lines is a document: kiln data reads JSONL, one JSON object per line "
                     "(a .json file holding one JSON array converts with `jq -c '.[]' FILE`)",
                     in->a->inputs[in->cur], skipped);
}

// Reports the current input's skipped lines and moves to the next input.
static void input_done(Inputs *in) {
    const KilnSkips *s = docreader_skips(in->r);
    for (long k = 0; k < s->count && k < KILN_SKIP_EXAMPLES; k++) fprintf(stderr, "kiln: skipped %s\n", s->examples[k]);
    if (s->count > KILN_SKIP_EXAMPLES) fprintf(stderr, "kiln: ... and %ld more skipped lines\n", s->count - KILN_SKIP_EXAMPLES);
    skips_merge(&in->skips, s);
    in->repaired += docreader_repaired(in->r);
    docreader_close(in->r);
    in->r = NULL;
    in->cur++;
    in->docs = 0;
}

static int input_open(Inputs *in, KilnErr *err) {
    return docreader_open(&in->r, in->a->inputs[in->cur], in->a->text_field, in->a->source, err);
}

static int inputs_next(void *ctx, KilnDoc *doc, KilnErr *err) {
    Inputs *in = ctx;
    while (in->cur < in->a->ninputs) {
        if (!in->r && input_open(in, err)) return -1;
        int got = docreader_next(in->r, doc, err);
        if (got > 0) in->docs++;
        if (got) return got;
        if (input_check(in, err)) {
            input_done(in);
            return -1;
        }
        input_done(in);
    }
    return 0;
}

// A corpus stage given one file reads it itself: this reads up to the first
// document, so that a file without any fails as it does for the other stages.
static int probe_input(Inputs *in, KilnErr *err) {
    if (input_open(in, err)) return -1;
    KilnDoc doc = {0};  // docreader_next reuses the buffers it is given
    int got = docreader_next(in->r, &doc, err);
    doc_free(&doc);
    if (got < 0) return -1;
    in->docs = got;
    if (input_check(in, err)) return -1;
    docreader_close(in->r);
    in->r = NULL;
    in->docs = 0;
    return 0;
}

// A corpus stage reads its input more than once: several inputs or stdin are
// first copied into one file in the work directory.
static int spill_inputs(Inputs *in, const char *path, KilnErr *err) {
    KilnDocWriter *w;
    if (docwriter_open(&w, path, err)) return -1;
    if (stages_run_stream(NULL, 0, (KilnDocSource){.next = inputs_next, .ctx = in}, w, NULL, err)) {
        docwriter_abort(w);
        return -1;
    }
    return docwriter_commit(w, err);
}

static int run_stage(const KilnStageDef *def, StageArgs *a) {
    KilnErr err;
    void *state = NULL;
    if (def->create(&a->params, a->seed, &state, &err)) return cli_error("%s", err.msg);
    if (params_check_unused(&a->params, &err)) {
        def->destroy(state);
        return cli_error("%s (see `kiln data %s --help`)", err.msg, def->name);
    }
    KilnStageReport rep;
    stage_report_init(&rep, def->name);
    Inputs in = {.a = a};
    KilnDocWriter *out = NULL, *rej = NULL;
    char spill[4096] = "", work[4096] = "";
    int rc = docwriter_open(&out, a->out, &err);
    if (!rc && a->rejects) rc = docwriter_open(&rej, a->rejects, &err);
    double t0 = kiln_now();
    if (!rc && def->apply) {
        // one input at a time, so the runner parses each file's lines in parallel
        KilnStage st = {.def = def, .state = state, .rejects = rej};
        while (!rc && in.cur < a->ninputs) {
            long before = rep.docs_in;
            rc = input_open(&in, &err) || stages_run_stream(&st, 1, docreader_source(in.r), out, &rep, &err);
            in.docs = rep.docs_in - before;
            if (!rc && in.r) rc = input_check(&in, &err);
            if (in.r) input_done(&in);
        }
    } else if (!rc) {
        const char *base = a->work_dir ? a->work_dir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(work, sizeof work, "%s/kiln-%s-%d", base, def->name, (int)getpid());
        rc = kiln_mkdirs(work, &err);
        const char *path = a->inputs[0];
        if (!rc && (a->ninputs > 1 || !strcmp(path, "-"))) {
            snprintf(spill, sizeof spill, "%s/input.jsonl", work);
            rc = spill_inputs(&in, spill, &err);
            path = spill;
        } else if (!rc) {
            rc = probe_input(&in, &err);
            if (rc && in.r) input_done(&in);  // prints the skipped lines
        }
        if (!rc) rc = def->run_corpus(state, path, out, rej, work, &rep, &err);
        if (rep.seconds == 0) rep.seconds = kiln_now() - t0;  // stages may report CPU time
    }
    if (in.r) docreader_close(in.r);
    if (rc) {
        if (out) docwriter_abort(out);
        if (rej) docwriter_abort(rej);
    } else {
        rc = docwriter_commit(out, &err) || (rej && docwriter_commit(rej, &err));
    }
    if (spill[0]) unlink(spill);
    if (work[0]) rmdir(work);
    if (!rc && def->report_json) rep.extra_json = def->report_json(state);
    skips_merge(&rep.skips, &in.skips);  // the stage's own reader counted the rest
    def->destroy(state);
    if (rc) {
        stage_report_free(&rep);
        cli_error("%s: %s", def->name, err.msg);
        return in.not_jsonl ? 2 : 1;  // 2: bad input, as `kiln pretrain` exits on a bad config
    }
    KilnBuf j = {0};
    kbuf_putc(&j, '[');
    stage_report_json(&rep, &j);
    kbuf_putc(&j, ']');
    cJSON *arr = cJSON_ParseWithLength(j.data, j.len);
    stage_reports_print(stderr, arr);
    if (in.repaired) fprintf(stderr, "input: %ld texts with invalid UTF-8 repaired\n", in.repaired);
    if (a->report) {
        char *text = cJSON_Print(cJSON_GetArrayItem(arr, 0));
        KilnAtomicFile af;
        if (kiln_atomic_open(&af, a->report, &err) || kiln_atomic_write(&af, text, strlen(text), &err) ||
            kiln_atomic_commit(&af, &err))
            rc = cli_error("%s", err.msg);
        free(text);
    }
    cJSON_Delete(arr);
    kbuf_free(&j);
    stage_report_free(&rep);
    return rc;
}

static int cmd_run(int argc, char **argv) {
    if (argc != 2) return cli_error("usage: kiln data run PIPELINE.yaml");
    KilnPipeline p;
    KilnErr err;
    if (pipeline_load(&p, argv[1], &err)) return cli_error("%s", err.msg);
    int rc = pipeline_run(&p, stderr, &err);
    if (rc) cli_error("%s", err.msg);
    pipeline_free(&p);
    return rc ? 1 : 0;
}

// `kiln data trace MANIFEST SHARD POS...`: which document each token came from.
static int cmd_trace(int argc, char **argv) {
    if (argc < 4) return cli_error("usage: kiln data trace MANIFEST.json SHARD.bin POS [POS...]");
    KilnManifest *m;
    KilnErr err;
    if (manifest_load(&m, argv[1], &err)) return cli_error("%s", err.msg);
    int rc = 0;
    printf("position\tsource\tid\tstart\ttokens\n");
    for (int i = 3; i < argc && !rc; i++) {
        long pos, start, n;
        const char *source, *id;
        if (kiln_parse_long(argv[i], 0, LONG_MAX, &pos)) rc = cli_error("trace: '%s' is not a token position", argv[i]);
        else if (manifest_find(m, argv[2], pos, &source, &id, &start, &n, &err)) rc = cli_error("%s", err.msg);
        else printf("%ld\t%s\t%s\t%ld\t%ld\n", pos, source, id, start, n);
    }
    manifest_free(m);
    return rc;
}

static int data_main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "run")) {
        if (cli_wants_help(argc - 1, argv + 1)) {
            puts("usage: kiln data run PIPELINE.yaml  (see docs/data.md for the file's keys)");
            return 0;
        }
        return cmd_run(argc - 1, argv + 1);
    }
    if (!strcmp(sub, "trace")) return cmd_trace(argc - 1, argv + 1);
    if (!strcmp(sub, "gather")) return cmd_data_gather(argc - 1, argv + 1);
    // `kiln data classifier train|eval|predict` trains and inspects models;
    // `kiln data classifier --model M` is the stage
    if (!strcmp(sub, "classifier") && argc > 2 &&
        (!strcmp(argv[2], "train") || !strcmp(argv[2], "eval") || !strcmp(argv[2], "predict")))
        return cmd_data_classifier(argc - 1, argv + 1);
    const KilnStageDef *def = stage_find(sub);
    if (!def) {
        cli_error("data: no such stage or subcommand '%s'", sub);
        print_stages(stderr);
        return 1;
    }
    if (cli_wants_help(argc - 1, argv + 1)) {
        printf("kiln data %s: %s\n%s stage. parameters (--name value; lists: repeat the option):\n%s", def->name,
               def->summary, def->apply ? "A per-document" : "A corpus", def->params_help ? def->params_help : "  none\n");
        return 0;
    }
    StageArgs a = {0};
    int rc = parse_stage_args(argc - 1, argv + 1, &a);
    if (!rc) rc = run_stage(def, &a);
    params_free(&a.params);
    free(a.inputs);
    return rc;
}

const KilnCommand CMD_DATA = {
    .name = "data",
    .run = data_main,
    .summary = "build a pretraining corpus: gather, clean, filter, dedup, decontaminate, mix, tokenize",
    .usage = "usage: kiln data run PIPELINE.yaml | kiln data STAGE ... | kiln data --help\n",
    .own_help = 1,
};
