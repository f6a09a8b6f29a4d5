// sources_internal.h: what sources.c shares with the grouped formats of
// source_dict.c (dictd, wordnet, fortune).
#ifndef KILN_SOURCES_INTERNAL_H
#define KILN_SOURCES_INTERNAL_H

#include "data/read/sources.h"

// Documents made from one file, waiting to be handed out in order.
typedef struct {
    KilnBuf id, text;
} SrcItem;

// Everything a format's loader needs: the options, where to put documents and
// skips. One per reader; formats never keep state between files.
typedef struct {
    const char *name;      // the source name (documents' source field)
    KilnSkips *skips;
    SrcItem *items;        // the current file's documents
    long nitems, cap_items;
    long group_chars;      // dictd, wordnet, fortune: about this many characters per document
    long max_chars;        // text split=blank: at most this many per document
    long max_bytes;        // code: larger files are skipped
    const char *split;     // text: NULL (whole file), "blank", or a separator line
    KilnBuf tmp;           // scratch for UTF-8 repair
    long extra_bytes;      // input read besides the listed file (dictd's .dict.dz), for source_bytes
} SrcLoad;

// Queues a document; empty (all-whitespace) texts become a skip naming id.
// Invalid UTF-8 is repaired (U+FFFD). -1 only when out of memory.
int src_emit(SrcLoad *L, const char *id, size_t id_len, const char *text, size_t n, KilnErr *err);

// kiln_read_decompressed (plain, gzip, dictzip or zstd) with its problems
// noted as skips: -1 (unreadable), 0, 1 (damaged; out holds what could be read).
int src_read_noting(KilnSkips *skips, const char *path, KilnBuf *out);

// Entries collected into documents of about group_chars characters.
typedef struct {
    KilnBuf text, first, last;
    long n;             // entries in the current group
    const char *sep;    // between entries: "\n\n" or "\n"
    uint64_t *seen;     // hashes of the ids emitted from this file (open addressing, 0 = empty)
    long nseen, cap_seen;
} SrcGroup;
// Adds one entry (label: its headword or number, for the id); emits the group
// as "<prefix>:<first>..<last>" once it holds group_chars characters. An id
// already emitted from the file (a headword that appears twice, as jargon's
// "op") gets "#2", "#3"... so that ids stay unique.
int src_group_add(SrcLoad *L, SrcGroup *g, const char *prefix, const char *label, const char *text, size_t n,
                  KilnErr *err);
int src_group_flush(SrcLoad *L, SrcGroup *g, const char *prefix, KilnErr *err);
void src_group_free(SrcGroup *g);

// Loaders of source_dict.c: read one file, queue its documents. 0, or -1 on a
// fatal error; damaged input is a skip.
int load_dictd(SrcLoad *L, const char *path, KilnErr *err);
int load_wordnet(SrcLoad *L, const char *path, KilnErr *err);
int load_fortune(SrcLoad *L, const char *path, KilnErr *err);

// dictd's base64 number ("CTu9" -> offset); -1 when s[0..n) is empty, too long
// or has a character outside A-Za-z0-9+/.
long dictd_b64(const char *s, size_t n);

#endif
