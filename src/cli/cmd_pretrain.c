// cmd_pretrain.c: `kiln pretrain`: train a model from a YAML config.
#include "cli.h"

#include "kiln/train.h"

#include <string.h>

static int run(int argc, char **argv) {
    KilnConfig cfg;
    KilnErr err;
    kiln_config_defaults(&cfg);
    const char *config_path = NULL, *resume = NULL;
    int quiet = 0;
    // the file is read first so that --set overrides it wherever it appears
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) {
            if (++i >= argc) return cli_error("%s needs a file", argv[i - 1]);
            config_path = argv[i];
        } else if (!strcmp(argv[i], "--set")) {
            if (++i >= argc) return cli_error("--set needs key=value");
        } else if (!strcmp(argv[i], "--resume")) {
            if (++i >= argc) return cli_error("--resume needs a checkpoint directory or 'latest'");
            resume = argv[i];
        } else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
            quiet = 1;
        } else if (argv[i][0] != '-' && !config_path) {
            config_path = argv[i];
        } else {
            return cli_error("pretrain: unknown argument '%s' (see `kiln pretrain --help`)", argv[i]);
        }
    }
    if (config_path && kiln_config_load_yaml(&cfg, config_path, &err)) return cli_error("%s", err.msg);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--set")) continue;
        char *kv = argv[++i], *eq = strchr(kv, '=');
        if (!eq) return cli_error("--set %s: expected key=value", kv);
        *eq = 0;
        int rc = kiln_config_set(&cfg, kv, eq + 1, "--set", &err);
        *eq = '=';
        if (rc) return cli_error("%s", err.msg);
    }
    if (kiln_config_finalize(&cfg, &err)) return cli_error("%s%s%s", config_path ? config_path : "", config_path ? ": " : "", err.msg);
    char latest[1024];
    if (resume && !strcmp(resume, "latest")) {
        if (checkpoint_latest(cfg.out_dir, latest, sizeof latest, &err)) return cli_error("%s", err.msg);
        resume = latest;
    }
    KilnPretrainOptions opt = {resume, quiet ? NULL : stdout};
    if (pretrain_run(&cfg, &opt, &err)) return cli_error("%s", err.msg);
    return 0;
}

const KilnCommand CMD_PRETRAIN = {
    "pretrain", run, "train a transformer from token shards",
    "usage: kiln pretrain [-c] CONFIG.yaml [--set KEY=VALUE]... [--resume DIR|latest] [-q]\n"
    "\n"
    "Trains the model described by CONFIG (see `kiln help config` for every key) on\n"
    "data.train shards, evaluates data.val every train.eval_every steps, and writes\n"
    "checkpoints to out_dir (out_dir/ckpt-<step>/, out_dir/latest).\n"
    "\n"
    "  -c, --config FILE   YAML config (sections model, train, data; key out_dir)\n"
    "  --set KEY=VALUE     override one key, e.g. --set model.n_layer=4 (repeatable)\n"
    "  --resume DIR        continue from a checkpoint directory; 'latest' = out_dir/latest\n"
    "  -q, --quiet         no progress lines\n",
    0};
