// gather.h: `kiln data gather debian` — the default corpus, built from text
// that Debian packages install (the Bible, dictionaries, WordNet, fortunes,
// man pages, the Python standard library, C headers, licence texts), one
// JSONL file of documents per source.
#ifndef KILN_GATHER_H
#define KILN_GATHER_H

#include "kiln/core.h"

#define KILN_GATHER_MAX 16

typedef struct {
    const char *name;     // "kjv", "gcide", ...
    const char *package;  // the Debian package that provides it
    long docs, files, skips;
    long text_bytes;      // document text written
    long raw_bytes;       // input files read (on disk)
    double seconds;
    int missing;          // not installed: nothing written (and an old file removed)
    int capped;           // stopped at max_mb
    char first_skip[256];
} KilnGatherStat;

// The sources, in the order they are gathered: fills names[i] and packages[i]
// (either may be NULL) for i < cap; returns how many there are.
int gather_debian_sources(const char **names, const char **packages, int cap);

// Writes <out_dir>/<name>.jsonl (atomically) for every source, or only those
// named in only[0..nonly). max_mb > 0 stops a source once its documents hold
// that many megabytes (10^6) of text. progress (may be NULL) is called after
// each source. stats receives one entry per source tried (*nstats of them).
// A missing source is not an error; an unknown name or a write failure is.
int gather_debian(const char *out_dir, double max_mb, const char *const *only, int nonly, KilnGatherStat *stats,
                  int *nstats, void (*progress)(const KilnGatherStat *s, void *ctx), void *ctx, KilnErr *err);

#endif
