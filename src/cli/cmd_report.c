// cmd_report.c: `kiln report RUN [-o FILE]`: a self-contained HTML page about a run.
#include "cli/cli.h"
#include "core/rundir.h"

#include "kiln/report.h"

#include <stdio.h>
#include <string.h>

static int run(int argc, char **argv) {
    const char *run_dir = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            if (++i >= argc) return cli_error("%s needs a file ('-' for stdout)", argv[i - 1]), 2;
            out = argv[i];
        } else if ((argv[i][0] != '-' || !argv[i][1]) && !run_dir) {
            run_dir = argv[i];
        } else {
            return cli_error("report: unexpected argument '%s' (see `kiln report --help`)", argv[i]), 2;
        }
    }
    if (!run_dir) return cli_error("report: which run? usage: kiln report RUN [-o FILE]"), 2;
    char path[4096];
    if (!out) {
        snprintf(path, sizeof path, "%s/" RUNDIR_REPORT, run_dir);
        out = path;
    }
    KilnErr err;
    int bad_input = 0;
    if (report_write(run_dir, out, &bad_input, &err)) {
        cli_error("%s", err.msg);
        return bad_input ? 2 : 1;
    }
    if (strcmp(out, "-")) fprintf(stderr, "kiln: wrote %s\n", out);
    return 0;
}

const KilnCommand CMD_REPORT = {
    "report", run, "render a run's metrics, events, config and environment as one HTML page",
    "usage: kiln report RUN [-o FILE]\n"
    "\n"
    "Reads RUN/" RUNDIR_METRICS " (and " RUNDIR_INCIDENTS ", " RUNDIR_CONFIG ", " RUNDIR_ENV ") and writes\n"
    "a self-contained HTML page: summary, a chart per series (loss with val loss,\n"
    "lr, gradient norm, tokens/s, batch size, MFU), events as markers and a table,\n"
    "the config and the environment. It needs no network to view.\n"
    "\n"
    "  -o, --output FILE   where to write it (default RUN/" RUNDIR_REPORT "; '-' = stdout)\n"
    "\n"
    "Exit status: 0 written; 2 bad usage or a malformed input line (file:line named);\n"
    "1 the page could not be written.\n",
    0};
