// sources.h: raw files to documents. A source is a name, path globs and a
// format; its reader yields KilnDocs {source: name, id: path[#part], text}.
// Files may be plain, gzip or zstd (by magic bytes; WARC: plain or gzip).
//   text      one document per file (or per part, split on a separator)
//   jsonl     JSONL with a text field (and optional id)
//   html      one document per file, main text (extract.h)
//   warc      response records as main text, WET conversion records as-is
//   man       man pages (roff, .gz or .zst) as text
//   code      source files under a tree, filtered by extension
//   dictd     dictd databases (.index + .dict[.dz]), entries grouped into documents
//   wordnet   WordNet data.* files, synsets with glosses grouped into documents
//   fortune   fortune files (entries separated by % lines), grouped
#ifndef KILN_SOURCES_H
#define KILN_SOURCES_H

#include "kiln/data.h"

typedef struct {
    const char *name;             // the documents' source field
    const char *format;           // one of the formats above
    const char *const *globs;     // files or directories (directories are walked)
    int nglobs;
    KilnParams *opts;             // format options (may be NULL): text_field, split, ext, ...
} KilnSourceSpec;

typedef struct KilnSourceReader KilnSourceReader;
int source_open(KilnSourceReader **r, const KilnSourceSpec *spec, KilnErr *err);
// The format and its options checked as source_open checks them, without
// looking for files: a pipeline checks every source before reading the first.
int source_check(const KilnSourceSpec *spec, KilnErr *err);
KilnDocSource source_docs(KilnSourceReader *r);
const KilnSkips *source_skips(const KilnSourceReader *r);  // unreadable files, bad records
long source_files(const KilnSourceReader *r);
long source_bytes(const KilnSourceReader *r);              // raw bytes read
void source_close(KilnSourceReader *r);

#endif
