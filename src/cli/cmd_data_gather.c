// cmd_data_gather.c: `kiln data gather debian` — the default corpus from
// Debian packages, one JSONL file per source (the work is in gather.c).
#include "cli/cli.h"

#include "core/parse.h"
#include "kiln/gather.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_MB 16.0

static const char USAGE[] =
    "usage: kiln data gather debian [-o DIR] [--max-mb N] [--only NAME,NAME...]\n"
    "\n"
    "Builds the default corpus from text that Debian packages install\n"
    "(scripts/install-deps.sh installs them): one JSONL file of documents\n"
    "{source, id, text} per source in DIR, written atomically.\n"
    "\n"
    "  -o, --output DIR  where to write (default data/debian)\n"
    "  --max-mb N        stop a source at N MB (10^6 bytes) of text; 0 = no cap (default 16)\n"
    "  --only LIST       only these sources (comma-separated)\n"
    "\n"
    "sources: kjv (bible-kjv: one document per book), gcide, foldoc, jargon\n"
    "(dictd dictionaries), wordnet (synsets with glosses), fortunes, man\n"
    "(English man pages, sections 1-8), python (the standard library, without\n"
    "tests), c-headers (/usr/include), copyright (/usr/share/doc/*/copyright).\n"
    "A source whose package is missing is reported and skipped.\n";

static void progress(const KilnGatherStat *s, void *ctx) {
    (void)ctx;
    if (s->missing) {
        fprintf(stderr, "gather: %-10s missing (install %s)\n", s->name, s->package);
        return;
    }
    fprintf(stderr, "gather: %-10s %7ld docs %8.2f MB from %ld files in %.2f s%s\n", s->name, s->docs,
            s->text_bytes / 1e6, s->files, s->seconds, s->capped ? " (capped)" : "");
    if (s->skips) fprintf(stderr, "gather: %-10s %ld skipped, first: %s\n", s->name, s->skips, s->first_skip);
}

static void summary(const char *dir, const KilnGatherStat *st, int n, double seconds) {
    long docs = 0, bytes = 0, raw = 0, skips = 0;
    printf("\n%-10s %9s %9s %9s %7s %8s\n", "source", "docs", "text MB", "input MB", "skips", "seconds");
    for (int i = 0; i < n; i++) {
        const KilnGatherStat *s = &st[i];
        if (s->missing) {
            printf("%-10s %9s   (not installed: %s)\n", s->name, "-", s->package);
            continue;
        }
        printf("%-10s %9ld %9.2f %9.2f %7ld %8.2f%s\n", s->name, s->docs, s->text_bytes / 1e6, s->raw_bytes / 1e6,
               s->skips, s->seconds, s->capped ? "  capped" : "");
        docs += s->docs;
        bytes += s->text_bytes;
        raw += s->raw_bytes;
        skips += s->skips;
    }
    printf("%-10s %9ld %9.2f %9.2f %7ld %8.2f\n", "total", docs, bytes / 1e6, raw / 1e6, skips, seconds);
    printf("wrote %s/*.jsonl\n", dir);
}

// Splits "a,b,c" (in place) into names.
static int split_list(char *s, const char **out, int cap) {
    int n = 0;
    for (char *t = strtok(s, ","); t && n < cap; t = strtok(NULL, ",")) out[n++] = t;
    return n;
}

int cmd_data_gather(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(USAGE, stdout);
        return 0;
    }
    const char *dir = "data/debian";
    double max_mb = DEFAULT_MAX_MB;
    const char *only[KILN_GATHER_MAX];
    int nonly = 0, have_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(o, "debian") && !have_set) {
            have_set = 1;
        } else if ((!strcmp(o, "-o") || !strcmp(o, "--output")) && more) {
            dir = argv[++i];
        } else if (!strcmp(o, "--max-mb") && more) {
            if (kiln_parse_double(argv[++i], &max_mb) || max_mb < 0)
                return cli_error("--max-mb wants a number >= 0, got '%s'", argv[i]);
        } else if (!strcmp(o, "--only") && more) {
            nonly = split_list(argv[++i], only, KILN_GATHER_MAX);
        } else {
            fputs(USAGE, stderr);
            return cli_error("data gather: unexpected argument '%s'", o);
        }
    }
    if (!have_set) {
        fputs(USAGE, stderr);
        return cli_error("data gather: which corpus? (only 'debian' so far)");
    }
    KilnGatherStat st[KILN_GATHER_MAX];
    int n = 0;
    KilnErr err;
    double t0 = kiln_now();
    if (gather_debian(dir, max_mb, only, nonly, st, &n, progress, NULL, &err)) return cli_error("%s", err.msg);
    summary(dir, st, n, kiln_now() - t0);
    int got = 0;
    for (int i = 0; i < n; i++) got += !st[i].missing;
    if (!got) return cli_error("data gather: none of the sources is installed (run scripts/install-deps.sh)");
    return 0;
}
