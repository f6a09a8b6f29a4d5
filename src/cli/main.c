// main.c: `kiln COMMAND [ARGS]`, git style.
#include "backend/backend.h"
#include "cli/cli.h"

#include "kiln/config.h"
#include "kiln/core.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const KilnCommand CMD_REPORT;  // cmd_report.c
extern const KilnCommand CMD_EVAL;    // cmd_eval.c
extern const KilnCommand CMD_ENV;     // cmd_env.c

static const KilnCommand *const COMMANDS[] = {&CMD_DATA, &CMD_TOKENIZER, &CMD_PRETRAIN, &CMD_SUPERVISE,
                                              &CMD_REPORT, &CMD_EVAL, &CMD_ENV};
#define NCOMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *f) {
    fprintf(f, "usage: kiln COMMAND [ARGS]\n\n"
               "kiln takes raw text to a trained language model.\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-12s %s\n", COMMANDS[i]->name, COMMANDS[i]->summary);
    fprintf(f, "  %-12s %s\n", "help", "show help for a command (`kiln help CMD`), or `kiln help config`");
    fprintf(f, "  %-12s %s\n", "version", "print the version and git commit");
}

static const KilnCommand *find(const char *name) {
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(COMMANDS[i]->name, name)) return COMMANDS[i];
    return NULL;
}

int main(int argc, char **argv) {
    backend_choose_runtime(argv);
    KilnThreadPlan plan;
    backend_thread_plan(&plan);
    backend_threads_apply(&plan);  // train.threads and eval --threads still override it
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("kiln %s (commit %s)\n", kiln_version(), kiln_git_commit());
        return 0;
    }
    if (!strcmp(cmd, "help")) {
        if (argc < 3) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[2], "config")) {
            printf("Config keys (YAML sections model/train/data, or --set section.key=value):\n");
            kiln_config_print_keys(stdout);
            return 0;
        }
        const KilnCommand *c = find(argv[2]);
        if (!c) return cli_error("no such command '%s' (see `kiln help`)", argv[2]);
        if (c->own_help) {  // its own --help is the full one (kiln data: every subcommand and stage)
            char *args[] = {(char *)c->name, "--help", NULL};
            return c->run(2, args);
        }
        fputs(c->usage, stdout);
        return 0;
    }
    const KilnCommand *c = find(cmd);
    if (!c) {
        cli_error("no such command '%s'", cmd);
        usage(stderr);
        return 1;
    }
    if (!c->own_help && cli_wants_help(argc - 1, argv + 1)) {
        fputs(c->usage, stdout);
        return 0;
    }
    return c->run(argc - 1, argv + 1);
}
