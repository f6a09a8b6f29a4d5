// cmd_pretrain.c: `kiln pretrain`: train a model from a YAML config.
#include "cli/cli.h"
#include "core/rundir.h"

#include "kiln/train.h"

#include <signal.h>
#include <string.h>

// Exit statuses (the supervisor's contract, see supervise.h).
enum { EXIT_FAILED = 1, EXIT_BAD_INPUT = 2, EXIT_STOPPED = 75 };

// Signal handlers can only reach flags with static storage.
static volatile sig_atomic_t stop_flag, control_flag;
static void on_stop(int sig) {
    (void)sig;
    stop_flag = 1;  // SA_RESETHAND: a second signal kills at once
}
static void on_control(int sig) {
    (void)sig;
    control_flag = 1;
}

static void install_handlers(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_control;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
}

static int run(int argc, char **argv) {
    KilnConfig cfg;
    KilnErr err;
    kiln_config_defaults(&cfg);
    const char *config_path = NULL, *resume = NULL, *init_from = NULL;
    int quiet = 0, supervise = 0;
    // the file is read first so that --set overrides it wherever it appears
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) {
            if (++i >= argc) return cli_error("%s needs a file", argv[i - 1]), EXIT_BAD_INPUT;
            config_path = argv[i];
        } else if (!strcmp(argv[i], "--set")) {
            if (++i >= argc) return cli_error("--set needs key=value"), EXIT_BAD_INPUT;
        } else if (!strcmp(argv[i], "--resume")) {
            if (++i >= argc) return cli_error("--resume needs a checkpoint directory or 'latest'"), EXIT_BAD_INPUT;
            resume = argv[i];
        } else if (!strcmp(argv[i], "--init-from")) {
            if (++i >= argc) return cli_error("--init-from needs a checkpoint directory"), EXIT_BAD_INPUT;
            init_from = argv[i];
        } else if (!strcmp(argv[i], "--supervise")) {
            supervise = 1;
        } else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
            quiet = 1;
        } else if (argv[i][0] != '-' && !config_path) {
            config_path = argv[i];
        } else {
            return cli_error("pretrain: unknown argument '%s' (see `kiln pretrain --help`)", argv[i]), EXIT_BAD_INPUT;
        }
    }
    if (resume && init_from) return cli_error("--resume and --init-from exclude each other"), EXIT_BAD_INPUT;
    // the defaults describe no data: with neither a file nor --set the first
    // complaint would be about data.train, which hides that the config is missing
    // (a config given entirely by --set, as scripts do, stays valid)
    int nset = 0;
    for (int i = 1; i < argc; i++) nset += !strcmp(argv[i], "--set");
    if (!config_path && !nset)
        return cli_error("pretrain needs a config file\nusage: kiln pretrain [-c] CONFIG.yaml [--set KEY=VALUE]... "
                         "(see `kiln pretrain --help`)"),
               EXIT_BAD_INPUT;
    if (config_path && kiln_config_load_yaml(&cfg, config_path, &err)) return cli_error("%s", err.msg), EXIT_BAD_INPUT;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--set")) continue;
        char *kv = argv[++i], *eq = strchr(kv, '=');
        if (!eq) return cli_error("--set %s: expected key=value", kv), EXIT_BAD_INPUT;
        *eq = 0;
        int rc = kiln_config_set(&cfg, kv, eq + 1, "--set", &err);
        *eq = '=';
        if (rc) return cli_error("%s", err.msg), EXIT_BAD_INPUT;
    }
    if (kiln_config_finalize(&cfg, &err))
        return cli_error("%s%s%s", config_path ? config_path : "", config_path ? ": " : "", err.msg), EXIT_BAD_INPUT;
    if (supervise) return cli_pretrain_supervised(argc, argv, cfg.out_dir, quiet);
    install_handlers();
    // env.json records the whole command line: main passes argv + 1, so argv[-1] is the program
    KilnPretrainOptions opt = {resume, init_from, quiet ? NULL : stdout, &stop_flag, &control_flag, argc + 1, argv - 1};
    int rc = pretrain_run(&cfg, &opt, &err);
    if (rc == KILN_TRAIN_STOPPED) return EXIT_STOPPED;
    if (rc < 0) return cli_error("%s", err.msg), rc == KILN_TRAIN_BAD_INPUT ? EXIT_BAD_INPUT : EXIT_FAILED;
    return 0;
}

const KilnCommand CMD_PRETRAIN = {
    "pretrain", run, "train a transformer from token shards",
    "usage: kiln pretrain [-c] CONFIG.yaml [--set KEY=VALUE]... [--resume DIR|latest]\n"
    "                     [--init-from CKPT] [--supervise] [-q]\n"
    "\n"
    "Trains the model described by CONFIG (see `kiln help config` for every key) on\n"
    "data.train shards, evaluates data.val every train.eval_every steps, and writes\n"
    "checkpoints, " RUNDIR_METRICS ", TensorBoard events (" RUNDIR_TB "/) and " RUNDIR_ENV " to out_dir.\n"
    "\n"
    "  -c, --config FILE   YAML config (sections model, train, data; key out_dir)\n"
    "  --set KEY=VALUE     override one key, e.g. --set model.n_layer=4 (repeatable)\n"
    "  --resume DIR        continue exactly from a checkpoint; 'latest' = the newest\n"
    "                      checkpoint of out_dir that verifies (older ones are tried\n"
    "                      when the newest is corrupt)\n"
    "  --init-from CKPT    warm start: that checkpoint's weights, fresh optimizer and schedule\n"
    "  --supervise         run under `kiln supervise`: restart on crash or hang\n"
    "  -q, --quiet         no progress lines\n"
    "\n"
    "While it runs: SIGTERM or SIGINT checkpoints and exits with status 75; write\n"
    "out_dir/" RUNDIR_CONTROL " (e.g. `lr_mult: 0.5`, `optimizer: lion`, `stop: now`) to change\n"
    "it live; SIGUSR1 reads that file at once, or checkpoints if there is none.\n"
    "Exit status: 0 done, 1 failure, 2 bad usage/config/input, 75 stopped.\n",
    0};
