// cmd_eval.c: `kiln eval`: score a checkpoint on evaluation tasks.
#include "backend/backend.h"
#include "cli/cli.h"

#include "core/parse.h"
#include "core/rundir.h"
#include "kiln/checkpoint.h"
#include "kiln/eval.h"
#include "kiln/toxicity.h"

#include <libgen.h>
#include <limits.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// --keep-items and --dump-prompts files: a temp file renamed into place once
// the evaluation succeeded, so that a failed or killed one (or a full disk)
// leaves the earlier file as it was; "-" is stdout.
typedef struct {
    KilnAtomicFile af;
    FILE *f;
} OutFile;

static int open_out(OutFile *o, const char *path, const char *what) {
    memset(o, 0, sizeof *o);
    if (!path) return 0;
    if (!strcmp(path, "-")) {
        o->f = stdout;
        return 0;
    }
    KilnErr err;
    if (kiln_atomic_open(&o->af, path, &err)) return cli_error("%s (%s)", err.msg, what), -1;
    o->f = o->af.f;
    return 0;
}

// Renames the file into place when keep, else removes its temp file; 0 or -1 (printed).
static int close_out(OutFile *o, int keep) {
    if (!o->af.f) return 0;
    if (!keep) {
        kiln_atomic_abort(&o->af);
        return 0;
    }
    KilnErr err;
    return kiln_atomic_commit(&o->af, &err) ? (cli_error("%s", err.msg), -1) : 0;
}

// tasks/toxicity.yaml and its like: sampled continuations scored for toxicity;
// the metrics join the results as rows of task o.task.
static int run_toxicity(const KilnModel *m, const KilnCodec *c, const char *path, const char *data_dir,
                        const char *out_dir, long limit, FILE *items_f, KilnEvalResults *res, KilnErr *err) {
    KilnToxOptions o;
    if (toxicity_task_options(path, data_dir, limit, out_dir, &o, err)) return 2;
    o.keep_items = items_f != NULL;
    KilnToxResult r;
    if (toxicity_eval(m, c, &o, &r, err)) return 1;
    int rc = toxicity_add_results(&r, o.task, res, err) ? 1 : 0;
    for (long i = 0; rc == 0 && items_f && r.items && i < r.n_prompts; i++) {
        KilnBuf b = {0};
        if (toxicity_item_json(&r.items[i], r.k, &b) == 0) {
            kbuf_putc(&b, '\n');
            fwrite(b.data, 1, b.len, items_f);  // an error stays in ferror, which the commit checks
        }
        kbuf_free(&b);
    }
    toxicity_result_free(&r);
    return rc;
}

// A run directory before its first checkpoint has neither RUN/latest nor
// RUN/state.json; checkpoint_open_model would then take it for a checkpoint and
// report "state.json: cannot open", which hides what is wrong. Anything else
// (a file, a missing path, a damaged checkpoint) is left to its own messages.
static int has_checkpoint(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return 1;
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", path, RUNDIR_LATEST);
    if (access(p, F_OK) == 0) return 1;
    snprintf(p, sizeof p, "%s/%s", path, RUNDIR_CKPT_STATE);
    return access(p, F_OK) == 0;
}

// `kiln eval --model RUN` keeps its results with the run, as
// RUN/eval/<checkpoint>-<UTC time>.json, where `kiln report RUN` shows them.
// A name already taken gets -2, -3, ...: no result replaces another.
static int save_in_run(const KilnEvalResults *res, const char *run_dir, const char *ckpt, int quiet, KilnErr *err) {
    char dir[4096], path[4400], stamp[32], base[256];
    snprintf(dir, sizeof dir, "%s/" RUNDIR_EVAL, run_dir);
    if (kiln_mkdirs(dir, err)) return -1;
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
    const char *slash = strrchr(ckpt, '/');
    snprintf(base, sizeof base, "%s", slash ? slash + 1 : ckpt);
    for (int k = 1;; k++) {
        if (k == 1) snprintf(path, sizeof path, "%s/%s-%s.json", dir, base, stamp);
        else snprintf(path, sizeof path, "%s/%s-%s-%d.json", dir, base, stamp, k);
        if (access(path, F_OK) != 0) break;
    }
    if (eval_write_json(res, ckpt, path, err)) return -1;
    if (!quiet) fprintf(stderr, "kiln eval: results kept in %s\n", path);
    return 0;
}

static int run(int argc, char **argv) {
    const char *model = NULL, *tasks = NULL, *output = NULL, *tok = NULL, *decontam = NULL, *items = NULL,
               *prompts = NULL;
    char task_dir[2048] = "", data_dir[2048] = "";
    int shots = -1, threads = 0, skip_bad = 0, quiet = 0;
    long limit = 0;
    unsigned long long seed = 1234;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
#define VALUE() (has ? argv[++i] : (cli_error("%s needs a value", a), (char *)NULL))
        if (!strcmp(a, "--model") || !strcmp(a, "-m")) {
            if (!(model = VALUE())) return 2;
        } else if (!strcmp(a, "--tasks") || !strcmp(a, "-t")) {
            if (!(tasks = VALUE())) return 2;
        } else if (!strcmp(a, "--output") || !strcmp(a, "-o")) {
            if (!(output = VALUE())) return 2;
        } else if (!strcmp(a, "--tokenizer")) {
            if (!(tok = VALUE())) return 2;
        } else if (!strcmp(a, "--decontam")) {
            if (!(decontam = VALUE())) return 2;
        } else if (!strcmp(a, "--keep-items")) {
            if (!(items = VALUE())) return 2;
        } else if (!strcmp(a, "--dump-prompts")) {
            if (!(prompts = VALUE())) return 2;
        } else if (!strcmp(a, "--task-dir") || !strcmp(a, "--data-dir")) {
            const char *v = VALUE();
            if (!v) return 2;
            snprintf(!strcmp(a, "--task-dir") ? task_dir : data_dir, sizeof task_dir, "%s", v);
        } else if (!strcmp(a, "--shots") || !strcmp(a, "--limit") || !strcmp(a, "--seed") || !strcmp(a, "--threads")) {
            const char *v = VALUE();
            long x;
            if (!v) return 2;
            if (kiln_parse_long(v, 0, LONG_MAX, &x)) return cli_error("%s wants a whole number >= 0, got '%s'", a, v), 2;
            if (!strcmp(a, "--shots")) shots = (int)x;
            else if (!strcmp(a, "--limit")) limit = (long)x;
            else if (!strcmp(a, "--seed")) seed = (unsigned long long)x;
            else threads = (int)x;
        } else if (!strcmp(a, "--skip-bad")) {
            skip_bad = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else {
            return cli_error("eval: unknown argument '%s' (see `kiln eval --help`)", a), 2;
        }
#undef VALUE
    }
    if (!model) return cli_error("eval: --model CKPT (a checkpoint or run directory) is required"), 2;
    if (!tasks) return cli_error("eval: --tasks NAME[,NAME...] is required (files in tasks/)"), 2;
    if (!task_dir[0]) task_default_dir(task_dir, sizeof task_dir);  // else --task-dir
    if (!data_dir[0]) {
        const char *env = getenv("KILN_DATA");
        snprintf(data_dir, sizeof data_dir, "%s", env && *env ? env : "");
        if (!data_dir[0]) {  // "tasks/../../shared/data" would show in every message and id: tidied
            char joined[sizeof data_dir + 32];
            snprintf(joined, sizeof joined, "%s/../../shared/data", task_dir);
            kiln_path_tidy(joined, data_dir, sizeof data_dir);
        }
    }
    backend_set_threads(threads);

    KilnErr err;
    KilnConfig cfg;
    KilnModel m;
    char ckpt[1024];
    if (!has_checkpoint(model))
        return cli_error("eval: %s holds no checkpoint (neither %s nor %s): give a checkpoint directory, or a run "
                         "directory once it has written one",
                         model, RUNDIR_LATEST, RUNDIR_CKPT_STATE),
               2;
    if (checkpoint_open_model(model, &cfg, &m, ckpt, &err)) return cli_error("%s", err.msg), 2;
    KilnCodec codec;
    KilnTokenizer *owned = NULL;
    if (codec_for_model(&codec, &owned, tok, &cfg, &err)) {
        gpt_destroy(&m);
        return cli_error("%s", err.msg), 2;
    }
    char **found = NULL;
    long nfound = 0;
    int rc = 0;
    if (decontam && eval_load_found(decontam, &found, &nfound, &err)) rc = cli_error("%s", err.msg), rc = 2;
    OutFile items_o = {0}, prompts_o = {0};
    if (rc == 0 && (open_out(&items_o, items, "per-item outputs") || open_out(&prompts_o, prompts, "prompts")))
        rc = 2;
    FILE *items_f = items_o.f, *prompts_f = prompts_o.f;
    KilnEvalOptions o = {shots, limit, seed, (const char *const *)found, nfound, items_f, prompts_f,
                         quiet ? NULL : stderr, NULL, NULL};
    if (!found) o.found = NULL;
    KilnEvalResults res = {0};
    if (!quiet && rc == 0)
        fprintf(stderr, "kiln eval: %s (%ld parameters), %d threads, tasks from %s, data from %s\n", ckpt,
                gpt_num_params(&m), omp_get_max_threads(), task_dir, data_dir);
    char *list = strdup(tasks);
    for (char *save = NULL, *name = strtok_r(list, ",", &save); rc == 0 && name; name = strtok_r(NULL, ",", &save)) {
        char path[4096];
        task_file_path(task_dir, name, path, sizeof path);
        if (toxicity_task_is(path)) {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s", output ? output : "");
            int trc = run_toxicity(&m, &codec, path, data_dir, output ? dirname(dir) : NULL, limit, items_f, &res,
                                   &err);
            if (trc) rc = cli_error("%s", err.msg), rc = trc;
            continue;
        }
        KilnTask *t;
        if (task_load(&t, path, data_dir, skip_bad, &err)) {
            rc = cli_error("%s", err.msg), rc = 2;
            break;
        }
        if (eval_task(&m, &codec, t, &o, &res, &err)) rc = cli_error("%s", err.msg), rc = 1;
        if (rc == 0 && task_skipped(t) && !quiet)
            fprintf(stderr, "  %s: %ld bad records skipped (--skip-bad)\n", task_name(t), task_skipped(t));
        task_free(t);
    }
    free(list);
    // results.json last: the per-item files it goes with are in place before it
    if (close_out(&items_o, rc == 0) || close_out(&prompts_o, rc == 0)) rc = 1;
    if (rc == 0) {
        eval_print_table(&res, stdout);
        if (output && eval_write_json(&res, ckpt, output, &err)) rc = cli_error("%s", err.msg), rc = 1;
        char latest[4096];
        snprintf(latest, sizeof latest, "%s/" RUNDIR_LATEST, model);
        if (rc == 0 && access(latest, F_OK) == 0 && save_in_run(&res, model, ckpt, quiet, &err))
            rc = cli_error("%s", err.msg), rc = 1;
    }
    close_out(&items_o, 0);
    close_out(&prompts_o, 0);
    for (long i = 0; i < nfound; i++) free(found[i]);
    free(found);
    eval_results_free(&res);
    if (owned) tokenizer_free(owned);
    gpt_destroy(&m);
    return rc;
}

const KilnCommand CMD_EVAL = {
    "eval", run, "score a checkpoint on benchmarks (lm-evaluation-harness metrics)",
    "usage: kiln eval --model CKPT|RUN --tasks NAME[,NAME...] [--shots K] [--limit N]\n"
    "                 [--output results.json] [--tokenizer FILE|bytes] [--decontam REPORT]\n"
    "                 [--keep-items FILE] [--dump-prompts FILE] [--task-dir DIR] [--data-dir DIR]\n"
    "                 [--seed S] [--threads N] [--skip-bad] [-q]\n"
    "\n"
    "Scores the model on each task (tasks/NAME.yaml, or a path to a task file) as\n"
    "EleutherAI's lm-evaluation-harness defines its metrics, on all threads, and\n"
    "prints a table (task, filter, shots, subset, metric, value, stderr, n).\n"
    "\n"
    "  --model CKPT        a checkpoint directory, or a run directory (its newest good checkpoint;\n"
    "                      the results are then also kept as RUN/eval/CKPT-TIME.json for kiln report)\n"
    "  --tasks LIST        comma-separated: hellaswag, lambada_openai, piqa, gsm8k,\n"
    "                      crows_pairs_english, wikitext, ... (see docs/eval.md)\n"
    "  --shots K           few-shot examples (default: each task's own)\n"
    "  --limit N           only the first N items of each task\n"
    "  --output FILE       results as JSON (task, metric, value, stderr, n, shots, model, date)\n"
    "  --tokenizer SPEC    the model's tokenizer file or 'bytes' (default: the one named in\n"
    "                      the manifest.json beside the checkpoint's training shards)\n"
    "  --decontam REPORT   a decontamination report: also score each task on its clean\n"
    "                      subset (items the report did not find in the training data)\n"
    "  --keep-items FILE   per-item outputs (log-likelihoods, generations) as JSONL\n"
    "  --dump-prompts FILE the rendered contexts and continuations as JSONL\n"
    "  --task-dir DIR      where task files are (default: $KILN_TASKS, ./tasks, or the repo's)\n"
    "  --data-dir DIR      datasets (default: $KILN_DATA, or ../shared/data beside the repo)\n"
    "  --skip-bad          count and skip dataset records that do not parse (default: error)\n"
    "\n"
    "Exit status: 0 done, 1 failure, 2 bad usage, task file, dataset or checkpoint.\n",
    0};
