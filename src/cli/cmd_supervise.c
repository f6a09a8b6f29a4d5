// cmd_supervise.c: `kiln supervise [OPTIONS] -- COMMAND ARGS...`: run a training
// command and restart it when it crashes or hangs (see supervise.h), and
// cli_pretrain_supervised for `kiln pretrain --supervise`.
#include "cli/cli.h"
#include "core/rundir.h"

#include "core/parse.h"
#include "kiln/config.h"
#include "kiln/supervise.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse_num(const char *opt, const char *s, double lo, double *out) {
    double v;
    if (kiln_parse_double(s, &v) || !(v >= lo) || v > 1e9) {
        cli_error("supervise: %s needs a number >= %g, got '%s'", opt, lo, s);
        return -1;
    }
    *out = v;
    return 0;
}

// RUN of a `... pretrain [-c] CONFIG [--set out_dir=DIR]` command: out_dir as
// pretrain itself would resolve it. -1 (with a message) when it cannot be known.
static int derive_run_dir(char **cmd, char *out, size_t n) {
    int j = 0;
    while (cmd[j] && strcmp(cmd[j], "pretrain")) j++;
    if (!cmd[j]) return cli_error("supervise: --run DIR is needed (the command is not `kiln pretrain`)"), -1;
    const char *config = NULL;
    for (int i = j + 1; cmd[i]; i++) {
        if ((!strcmp(cmd[i], "-c") || !strcmp(cmd[i], "--config")) && cmd[i + 1]) config = cmd[++i];
        else if ((!strcmp(cmd[i], "--set") || !strcmp(cmd[i], "--resume")) && cmd[i + 1]) i++;
        else if (cmd[i][0] != '-' && !config) config = cmd[i];
    }
    KilnConfig cfg;
    KilnErr err;
    kiln_config_defaults(&cfg);
    if (config && kiln_config_load_yaml(&cfg, config, &err))
        return cli_error("supervise: cannot find the run directory: %s (or give --run DIR)", err.msg), -1;
    for (int i = j + 1; cmd[i]; i++)  // later --set wins, as in pretrain
        if (!strcmp(cmd[i], "--set") && cmd[i + 1] && !strncmp(cmd[i + 1], "out_dir=", 8))
            snprintf(cfg.out_dir, sizeof cfg.out_dir, "%s", cmd[i + 1] + 8);
    snprintf(out, n, "%s", cfg.out_dir);
    return 0;
}

// Runs argv under supervision and turns the outcome into an exit status.
static int supervise(KilnSuperviseOptions *o, char **argv) {
    int code;
    KilnErr err;
    if (supervise_run(o, argv, &code, &err)) cli_error("supervise: %s", err.msg);
    return code;
}

static int run(int argc, char **argv) {
    KilnSuperviseOptions o;
    supervise_defaults(&o);
    o.log = stderr;
    const char *run_dir = NULL;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        double v;
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (a[0] != '-') break;  // the command itself
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(CMD_SUPERVISE.usage, stdout);
            return 0;
        }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o.log = NULL;
            continue;
        }
        if (i + 1 >= argc) return cli_error("supervise: %s needs a value (see `kiln supervise --help`)", a), 2;
        const char *val = argv[++i];
        if (!strcmp(a, "--run")) run_dir = val;
        else if (!strcmp(a, "--before-restart")) o.before_restart = val;
        else if (!strcmp(a, "--max-restarts")) {
            if (parse_num(a, val, 0, &v) || v != (int)v || v > 1000000) return 2;
            o.max_restarts = (int)v;
        } else if (!strcmp(a, "--window")) {
            if (parse_num(a, val, 0, &v)) return 2;
            o.budget_window_s = v;
        } else if (!strcmp(a, "--heartbeat-timeout")) {
            if (parse_num(a, val, 0.01, &v)) return 2;
            o.heartbeat_timeout_s = v;
        } else if (!strcmp(a, "--kill-grace")) {
            if (parse_num(a, val, 0, &v)) return 2;
            o.kill_grace_s = v;
        } else if (!strcmp(a, "--backoff")) {
            if (parse_num(a, val, 0, &v)) return 2;
            o.backoff_initial_s = v;
        } else if (!strcmp(a, "--backoff-max")) {
            if (parse_num(a, val, 0, &v)) return 2;
            o.backoff_max_s = v;
        } else {
            return cli_error("supervise: unknown option '%s' (see `kiln supervise --help`)", a), 2;
        }
    }
    if (i >= argc) return cli_error("supervise: no command given (kiln supervise [OPTIONS] -- COMMAND ARGS...)"), 2;
    char **cmd = argv + i;  // main's argv: NULL-terminated
    if (run_dir) snprintf(o.run_dir, sizeof o.run_dir, "%s", run_dir);
    else if (derive_run_dir(cmd, o.run_dir, sizeof o.run_dir)) return 2;
    return supervise(&o, cmd);
}

int cli_pretrain_supervised(int argc, char **argv, const char *run_dir, int quiet) {
    KilnSuperviseOptions o;
    supervise_defaults(&o);
    o.log = quiet ? NULL : stderr;
    snprintf(o.run_dir, sizeof o.run_dir, "%s", run_dir);
    // this very binary, by path: PATH may hold another kiln or none
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return cli_error("pretrain --supervise: cannot find the kiln binary (/proc/self/exe)"), 1;
    self[n] = 0;
    char *deleted = strstr(self, " (deleted)");  // rebuilt while running: use the new file
    if (deleted && !deleted[10]) *deleted = 0;
    char **child = malloc(((size_t)argc + 2) * sizeof *child);
    if (!child) return cli_error("out of memory"), 1;
    int k = 0;
    child[k++] = self;
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--supervise")) child[k++] = argv[i];
    child[k] = NULL;
    int code = supervise(&o, child);
    free(child);
    return code;
}

const KilnCommand CMD_SUPERVISE = {
    "supervise", run, "run a training command, restarting it when it crashes or hangs",
    "usage: kiln supervise [OPTIONS] [--] COMMAND [ARGS...]\n"
    "\n"
    "Runs COMMAND (typically `kiln pretrain CONFIG`, or `mpirun ... kiln pretrain CONFIG`)\n"
    "and restarts it from the latest checkpoint when it crashes (killed by a signal, or\n"
    "an exit status other than 0, 2, 75, 126, 127) or hangs (RUN/" RUNDIR_HEARTBEAT " not rewritten\n"
    "for --heartbeat-timeout seconds: SIGTERM to its process group, SIGKILL after\n"
    "--kill-grace). Restarts add `--resume latest` (replacing any --resume) once\n"
    "RUN/" RUNDIR_LATEST " exists. Exit 0 (done), 2 (bad usage/config) and 75 (clean stop) end\n"
    "supervision with that status. SIGTERM/SIGINT are forwarded to the command, and\n"
    "the supervisor exits with its status without restarting it.\n"
    "Each incident is appended to RUN/" RUNDIR_INCIDENTS ". After --max-restarts restarts\n"
    "within --window seconds the supervisor gives up and exits 1.\n"
    "\n"
    "  --run DIR              run directory (default: out_dir of a `kiln pretrain` command)\n"
    "  --max-restarts N       restarts allowed within the window (default 5)\n"
    "  --window S             sliding window for --max-restarts; 0 = whole run (default 3600)\n"
    "  --heartbeat-timeout S  a heartbeat older than this means hung (default 300);\n"
    "                         also the limit for the first heartbeat after a start\n"
    "  --kill-grace S         SIGTERM to SIGKILL for a hung command (default 30)\n"
    "  --backoff S            wait before the first restart (default 5); it doubles with\n"
    "                         each restart in the window\n"
    "  --backoff-max S        longest wait (default 300)\n"
    "  --before-restart CMD   shell command run before each restart, e.g. to drop dead\n"
    "                         hosts from an MPI hostfile (scripts/mpi-prune-hosts.sh); it\n"
    "                         sees KILN_RUN_DIR, KILN_RESTART (n), KILN_INCIDENT (crash|hang);\n"
    "                         a non-zero exit gives up\n"
    "  -q, --quiet            no supervisor lines on stderr (incidents are still recorded)\n"
    "\n"
    "Exit status: the command's (0, 2, 75, ...), or 1 when the supervisor gave up.\n"
    "See docs/supervise.md.\n",
    1};
