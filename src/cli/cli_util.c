// cli_util.c: helpers every command shares (see cli.h).
#include "cli/cli.h"

#include <stdarg.h>
#include <string.h>

int cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("kiln: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

void cli_print_skips(const char *what, const KilnSkips *s) {
    if (!s->count) return;
    fprintf(stderr, "%s: skipped %ld bad lines\n", what, s->count);
    for (int i = 0; i < KILN_SKIP_EXAMPLES && i < s->count; i++) fprintf(stderr, "  %s\n", s->examples[i]);
}
