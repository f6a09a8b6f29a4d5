// yaml.c: libyaml's events built into the KyNode tree of yaml.h.
#include "core/yaml.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct {
    char *name;
    KyNode *node;
} Anchor;

typedef struct {
    KilnYaml *y;
    const char *name;
    unsigned flags;
    int strict;  // all of KY_STRICT's rules
    KilnErr *err;
    KyNode *stack[KY_MAX_DEPTH];  // the open mappings and sequences
    int depth;
    Anchor *anchors;  // this document's, for aliases
    int nanchors;
} Builder;

// Grows *items (of size bytes each) to hold n + 1 when n is 0 or a power of two.
static int grow(void *items, int n, size_t size) {
    if (n & (n - 1)) return 0;
    void *p = realloc(*(void **)items, size * (size_t)(n ? 2 * n : 4));
    if (!p) return -1;
    *(void **)items = p;
    return 0;
}

static int fail_at(Builder *b, const yaml_mark_t *m, const char *what) {
    return kiln_fail(b->err, "%s:%zu: %s", b->name, m->line + 1, what);
}

// A new node owned by y->all, or NULL when out of memory.
static KyNode *node_new(KilnYaml *y, KyType type, const yaml_event_t *ev) {
    if (y->nall == y->cap) {
        size_t cap = y->cap ? 2 * y->cap : 64;
        KyNode **all = realloc(y->all, cap * sizeof *all);
        if (!all) return NULL;
        y->all = all, y->cap = cap;
    }
    KyNode *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    y->all[y->nall++] = n;
    n->type = type;
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    if (type == KY_SCALAR) {
        static const char STYLE[] = {[YAML_SINGLE_QUOTED_SCALAR_STYLE] = '\'', [YAML_DOUBLE_QUOTED_SCALAR_STYLE] = '"',
                                     [YAML_LITERAL_SCALAR_STYLE] = '|', [YAML_FOLDED_SCALAR_STYLE] = '>'};
        yaml_scalar_style_t s = ev->data.scalar.style;
        n->style = s < sizeof STYLE ? STYLE[s] : 0;
        n->len = ev->data.scalar.length;
        if (!(n->str = malloc(n->len + 1))) return NULL;
        memcpy(n->str, ev->data.scalar.value, n->len);
        n->str[n->len] = 0;
    }
    return n;
}

// Remembers the node an anchor names; libyaml's loader refuses a name twice.
static int add_anchor(Builder *b, const yaml_char_t *anchor, KyNode *n, const yaml_event_t *ev) {
    if (!anchor || (b->flags & KY_NO_ALIASES)) return 0;
    for (int i = 0; i < b->nanchors; i++)
        if (!strcmp(b->anchors[i].name, (const char *)anchor))
            return kiln_fail(b->err, "%s:%zu: YAML error: found duplicate anchor (column %zu)", b->name,
                             ev->start_mark.line + 1, ev->start_mark.column + 1);
    if (grow(&b->anchors, b->nanchors, sizeof *b->anchors)) return kiln_fail(b->err, "out of memory");
    if (!(b->anchors[b->nanchors].name = strdup((const char *)anchor))) return kiln_fail(b->err, "out of memory");
    b->anchors[b->nanchors++].node = n;
    return 0;
}

static void drop_anchors(Builder *b) {
    for (int i = 0; i < b->nanchors; i++) free(b->anchors[i].name);
    b->nanchors = 0;
}

// Hangs n under the open collection (or makes it the document's root).
static int attach(Builder *b, KyNode *n, const yaml_event_t *ev) {
    KyNode *parent = b->depth ? b->stack[b->depth - 1] : NULL;
    if (!parent) {
        b->y->docs[b->y->ndocs - 1] = n;
        return 0;
    }
    if (b->strict && parent->type == KY_MAP && parent->nkids % 2 == 0 && n->type != KY_SCALAR)
        return fail_at(b, &ev->start_mark, "a mapping key must be a plain value");
    if (grow(&parent->kids, parent->nkids, sizeof *parent->kids)) return kiln_fail(b->err, "out of memory");
    parent->kids[parent->nkids++] = n;
    return 0;
}

static int start_doc(Builder *b, const yaml_event_t *ev) {
    KilnYaml *y = b->y;
    if (b->strict && y->ndocs) return fail_at(b, &ev->start_mark, "more than one YAML document");
    if (grow(&y->docs, y->ndocs, sizeof *y->docs) || grow(&y->doc_line, y->ndocs, sizeof *y->doc_line))
        return kiln_fail(b->err, "out of memory");
    y->docs[y->ndocs] = NULL;
    y->doc_line[y->ndocs++] = (int)ev->start_mark.line + 1;
    drop_anchors(b);
    return 0;
}

// One event into the tree; 1 when the stream (or the first document) is done.
static int on_event(Builder *b, const yaml_event_t *ev) {
    const char *anchor = NULL;
    KyNode *n = NULL;
    switch (ev->type) {
    case YAML_STREAM_END_EVENT: return 1;
    case YAML_DOCUMENT_START_EVENT: return start_doc(b, ev);
    case YAML_DOCUMENT_END_EVENT: return (b->flags & KY_FIRST_DOC) ? 1 : 0;
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT: b->depth--; return 0;
    case YAML_ALIAS_EVENT:
        if (b->flags & KY_NO_ALIASES) return fail_at(b, &ev->start_mark, "YAML aliases are not supported");
        for (int i = b->nanchors - 1; i >= 0 && !n; i--)
            if (!strcmp(b->anchors[i].name, (const char *)ev->data.alias.anchor)) n = b->anchors[i].node;
        if (!n)
            return kiln_fail(b->err, "%s:%zu: YAML error: found undefined alias (column %zu)", b->name,
                             ev->start_mark.line + 1, ev->start_mark.column + 1);
        return attach(b, n, ev);
    case YAML_SCALAR_EVENT:
        if (b->strict && strlen((const char *)ev->data.scalar.value) != ev->data.scalar.length)
            return fail_at(b, &ev->start_mark, "a NUL character in a value");
        if (!(n = node_new(b->y, KY_SCALAR, ev))) return kiln_fail(b->err, "out of memory");
        anchor = (const char *)ev->data.scalar.anchor;
        break;
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
        if (b->depth == KY_MAX_DEPTH) {
            char msg[64];
            snprintf(msg, sizeof msg, "nesting deeper than %d", KY_MAX_DEPTH);
            return fail_at(b, &ev->start_mark, msg);
        }
        if (!(n = node_new(b->y, ev->type == YAML_MAPPING_START_EVENT ? KY_MAP : KY_SEQ, ev)))
            return kiln_fail(b->err, "out of memory");
        anchor = (const char *)(ev->type == YAML_MAPPING_START_EVENT ? ev->data.mapping_start.anchor
                                                                     : ev->data.sequence_start.anchor);
        break;
    default: return 0;
    }
    if (add_anchor(b, (const yaml_char_t *)anchor, n, ev) || attach(b, n, ev)) return -1;
    if (n->type != KY_SCALAR) b->stack[b->depth++] = n;
    return 0;
}

int ky_parse(KilnYaml *y, const char *text, size_t len, const char *name, unsigned flags, KilnErr *err) {
    memset(y, 0, sizeof *y);
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return kiln_fail(err, "%s: cannot start the YAML parser", name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    Builder b = {.y = y, .name = name, .flags = flags, .strict = (flags & KY_STRICT) == KY_STRICT, .err = err};
    int rc = 0;
    while (rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = kiln_fail(err, "%s:%zu: YAML error: %s%s%s (column %zu)", name, parser.problem_mark.line + 1,
                           parser.problem ? parser.problem : "?", parser.context ? " " : "",
                           parser.context ? parser.context : "", parser.problem_mark.column + 1);
            break;
        }
        rc = on_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    drop_anchors(&b);
    free(b.anchors);
    if (rc < 0 && !(flags & KY_PARTIAL)) ky_free(y);
    return rc < 0 ? -1 : 0;
}

int ky_load(KilnYaml *y, const char *path, unsigned flags, KilnErr *err) {
    char *text;
    size_t len;
    memset(y, 0, sizeof *y);
    if (kiln_read_file(path, &text, &len, err)) return -1;
    int rc = ky_parse(y, text, len, path, flags, err);
    free(text);
    return rc;
}

void ky_free(KilnYaml *y) {
    for (size_t i = 0; i < y->nall; i++) {
        free(y->all[i]->str);
        free(y->all[i]->kids);
        free(y->all[i]);
    }
    free(y->all);
    free(y->docs);
    free(y->doc_line);
    memset(y, 0, sizeof *y);
}

const KyNode *ky_root(const KilnYaml *y) { return y->ndocs ? y->docs[0] : NULL; }

const KyNode *ky_key(const KyNode *map, const char *key) {
    if (!map || map->type != KY_MAP) return NULL;
    for (int i = 0; i + 1 < map->nkids; i += 2)
        if (map->kids[i]->type == KY_SCALAR && !strcmp(map->kids[i]->str, key)) return map->kids[i];
    return NULL;
}

const KyNode *ky_get(const KyNode *map, const char *key) {
    if (!map || map->type != KY_MAP) return NULL;
    for (int i = 0; i + 1 < map->nkids; i += 2)
        if (map->kids[i]->type == KY_SCALAR && !strcmp(map->kids[i]->str, key)) return map->kids[i + 1];
    return NULL;
}

const char *ky_str(const KyNode *n) { return n && n->type == KY_SCALAR ? n->str : NULL; }

int ky_quoted(const KyNode *n) { return n->type == KY_SCALAR && (n->style == '\'' || n->style == '"'); }

int ky_key_repeated(const KyNode *map, int i) {
    const char *k = ky_str(map->kids[i]);
    for (int j = 0; k && j < i; j += 2)
        if (ky_str(map->kids[j]) && !strcmp(map->kids[j]->str, k)) return 1;
    return 0;
}
