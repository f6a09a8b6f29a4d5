// manifest.h: a corpus's manifest.json (written by the corpus writer,
// corpus.h), read back to trace a token of a shard to the document it came from.
#ifndef KILN_MANIFEST_H
#define KILN_MANIFEST_H

#include "kiln/core.h"

// A loaded manifest.json, for tracing tokens back to documents.
typedef struct KilnManifest KilnManifest;
int manifest_load(KilnManifest **m, const char *path, KilnErr *err);
void manifest_free(KilnManifest *m);
// The document that holds token `pos` of shard `shard` (its file name, e.g.
// "train_000003.bin"): source, id (owned by m) and its range [start, start+n).
// -1 when the shard is not in the manifest or pos is past its end.
int manifest_find(const KilnManifest *m, const char *shard, long pos, const char **source, const char **id,
                  long *start, long *n, KilnErr *err);
// The tokenizer a corpus was made with, from its manifest.json at path: "bytes",
// or the tokenizer file's path, which the manifest records relative to its own
// directory (an absolute one is kept), joined here with that directory so it
// opens from any current directory. -1 when the file has no "tokenizer" string.
int manifest_tokenizer(const char *path, char *out, size_t cap, KilnErr *err);
#endif
