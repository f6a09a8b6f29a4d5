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

// libgomp has read its wait policy, and OpenBLAS its kernels, before main
// runs (backend.h says why both matter): when the user set no wait policy, or
// OpenBLAS fell back to generic kernels on a CPU that runs better ones, run
// this binary again with GOMP_SPINCOUNT or OPENBLAS_CORETYPE set, which the
// libraries then read as they load. The pid stays the same. If the exec fails,
// kiln carries on as it is and `kiln env` says so. (/proc/self/exe is the
// emulator under valgrind or qemu-user: set the variables there, and kiln does
// not run itself again.)
static void choose_runtime(char **argv) {
    int spin = 0, core_set = 0;
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT"))
        spin = !setenv("GOMP_SPINCOUNT", KILN_SPINCOUNT, 1) && !setenv(KILN_SPINCOUNT_ENV, "1", 1);
    KilnCpuIsa isa;
    backend_cpu_isa(&isa);
    const char *picked = backend_info().blas_core, *core = backend_blas_better_core(picked, &isa);
    if (!getenv("OPENBLAS_CORETYPE") && core)
        core_set = !setenv("OPENBLAS_CORETYPE", core, 1) && !setenv(KILN_CORETYPE_ENV, picked, 1);
    if (!spin && !core_set) return;
    execv("/proc/self/exe", argv);
    if (spin) unsetenv("GOMP_SPINCOUNT"), unsetenv(KILN_SPINCOUNT_ENV);
    if (core_set) unsetenv("OPENBLAS_CORETYPE"), unsetenv(KILN_CORETYPE_ENV);
}

int main(int argc, char **argv) {
    choose_runtime(argv);
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
