// yaml.h: a YAML file as a small tree of mappings, sequences and scalars, each
// with its line and column, so that every reader (config files, task files,
// pipeline files, toxicity tasks, the report's config table) checks keys and
// values on one tree and names file:line in its complaints.
#ifndef KILN_CORE_YAML_H
#define KILN_CORE_YAML_H

#include "kiln/core.h"

#include <stddef.h>

#define KY_MAX_DEPTH 32  // nesting no kiln file needs; bounds hostile input

typedef enum { KY_SCALAR, KY_MAP, KY_SEQ } KyType;

typedef struct KyNode {
    KyType type;
    int line, col;         // 1-based, of the node's first character
    char *str;             // KY_SCALAR: the value, NUL-terminated
    size_t len;            // KY_SCALAR: its length (more than strlen when it holds a NUL)
    char style;            // KY_SCALAR: 0 plain, '\'' or '"' quoted, '|' literal, '>' folded
    struct KyNode **kids;  // KY_MAP: key0, value0, key1, value1, ...; KY_SEQ: the items
    int nkids;
} KyNode;

// The documents of one stream. An alias is the anchored node itself (shared,
// as libyaml's document API has it); every node is owned by the list below.
typedef struct {
    KyNode **docs;  // each document's root
    int *doc_line;  // the line each document starts on ("---" or its first node)
    int ndocs;
    KyNode **all;
    size_t nall, cap;
} KilnYaml;

enum {
    KY_FIRST_DOC = 1,   // read the first document only; the rest of the stream is not parsed
    KY_NO_ALIASES = 2,  // an alias is an error
    KY_STRICT = 4 | 2,  // one document, scalar keys, no NUL in a scalar, no aliases
    KY_PARTIAL = 8,     // on an error keep the nodes read before it (the caller frees y)
};

// Parses text[0..len) into y (zeroed first). Errors name name:line: a syntax
// error "name:LINE: YAML error: what (column C)", the rest "name:LINE: what".
// With KY_PARTIAL a reader can walk what came before an error and report its
// own complaints about earlier lines first, as a reader of events would.
int ky_parse(KilnYaml *y, const char *text, size_t len, const char *name, unsigned flags, KilnErr *err);
int ky_load(KilnYaml *y, const char *path, unsigned flags, KilnErr *err);
void ky_free(KilnYaml *y);

const KyNode *ky_root(const KilnYaml *y);                // the first document's root; NULL when there is none
const KyNode *ky_get(const KyNode *map, const char *key);  // the value of key; NULL when absent or not a mapping
const KyNode *ky_key(const KyNode *map, const char *key);  // the key node itself (its line is the key's)
const char *ky_str(const KyNode *n);                     // a scalar's text; NULL for anything else
int ky_quoted(const KyNode *n);                          // 1 for a scalar written in quotes
// 1 when the key map->kids[i] (i even) is a scalar that an earlier key of map already spells.
int ky_key_repeated(const KyNode *map, int i);

#endif
