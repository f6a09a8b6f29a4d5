// cli.h: the kiln command table. Each command lives in its own cmd_*.c file.
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include "kiln/doc.h"

#include <stdio.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);  // argv[0] is the command name
    const char *summary;
    const char *usage;                  // full help text
    int own_help;                       // run() answers -h/--help itself (per subcommand)
} KilnCommand;

extern const KilnCommand CMD_PRETRAIN, CMD_TOKENIZER, CMD_DATA;
extern const KilnCommand CMD_SUPERVISE;
// `kiln pretrain ... --supervise`: argv (argv[0] "pretrain") minus --supervise, run by
// this binary under supervise_run with default options and RUN = run_dir (quiet:
// no supervisor lines); returns the exit status. See cmd_supervise.c.
int cli_pretrain_supervised(int argc, char **argv, const char *run_dir, int quiet);
int cmd_data_classifier(int argc, char **argv);  // `kiln data classifier ...`
int cmd_data_gather(int argc, char **argv);      // `kiln data gather debian`

// True if any argument is -h or --help.
int cli_wants_help(int argc, char **argv);
// Prints "kiln: message" to stderr and returns exit status 1.
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Prints "WHAT: skipped N bad lines" and the examples to stderr, if any were skipped.
void cli_print_skips(const char *what, const KilnSkips *s);

#endif
