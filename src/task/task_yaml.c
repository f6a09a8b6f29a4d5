// task_yaml.c: a YAML document as a small tree of mappings, sequences and
// scalars with their line numbers, so task files can be checked key by key
// and every complaint can name file:line.
#include "task/task_internal.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YT_MAX_DEPTH 32  // nesting a task file never needs; bounds hostile input

void ytree_free(YNode *n) {
    if (!n) return;
    for (int i = 0; i < n->nkids; i++) ytree_free(n->kids[i]);
    free(n->kids);
    free(n->str);
    free(n);
}

static int add_kid(YNode *parent, YNode *kid) {
    if ((parent->nkids & (parent->nkids - 1)) == 0) {  // grow at powers of two
        int cap = parent->nkids ? parent->nkids * 2 : 4;
        YNode **k = realloc(parent->kids, sizeof *k * (size_t)cap);
        if (!k) return -1;
        parent->kids = k;
    }
    parent->kids[parent->nkids++] = kid;
    return 0;
}

const YNode *ytree_get(const YNode *map, const char *key) {
    if (!map || map->type != YN_MAP) return NULL;
    for (int i = 0; i + 1 < map->nkids; i += 2)
        if (!strcmp(map->kids[i]->str, key)) return map->kids[i + 1];
    return NULL;
}

// The node an event starts (scalar, mapping or sequence), or NULL when out of memory.
static YNode *node_new(YNodeType type, const yaml_event_t *ev) {
    YNode *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->type = type;
    n->line = (long)ev->start_mark.line + 1;
    if (type == YN_SCALAR) {
        n->quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        n->str = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        if (!n->str) {
            free(n);
            return NULL;
        }
    }
    return n;
}

int ytree_load_string(const char *text, size_t len, const char *name, YNode **root, KilnErr *err) {
    *root = NULL;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return kiln_fail(err, "%s: cannot start the YAML parser", name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    YNode *stack[YT_MAX_DEPTH];
    int depth = 0, rc = 0, done = 0, docs = 0;
    YNode *top = NULL;
    while (!done && rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = kiln_fail(err, "%s:%zu: YAML error: %s%s%s", name, parser.problem_mark.line + 1,
                           parser.problem ? parser.problem : "?", parser.context ? " " : "",
                           parser.context ? parser.context : "");
            break;
        }
        long line = (long)ev.start_mark.line + 1;
        YNode *made = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) rc = kiln_fail(err, "%s:%ld: more than one YAML document", name, line);
            break;
        case YAML_ALIAS_EVENT: rc = kiln_fail(err, "%s:%ld: YAML aliases are not supported", name, line); break;
        case YAML_SCALAR_EVENT:
            if (strlen((const char *)ev.data.scalar.value) != ev.data.scalar.length)
                rc = kiln_fail(err, "%s:%ld: a NUL character in a value", name, line);
            else if (!(made = node_new(YN_SCALAR, &ev)))
                rc = kiln_fail(err, "out of memory");
            break;
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (depth == YT_MAX_DEPTH) rc = kiln_fail(err, "%s:%ld: nesting deeper than %d", name, line, YT_MAX_DEPTH);
            else if (!(made = node_new(ev.type == YAML_MAPPING_START_EVENT ? YN_MAP : YN_SEQ, &ev)))
                rc = kiln_fail(err, "out of memory");
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT: depth--; break;
        default: break;
        }
        if (made) {
            YNode *parent = depth ? stack[depth - 1] : NULL;
            if (parent && parent->type == YN_MAP && parent->nkids % 2 == 0 && made->type != YN_SCALAR) {
                rc = kiln_fail(err, "%s:%ld: a mapping key must be a plain value", name, line);
                ytree_free(made);
            } else if (parent ? add_kid(parent, made) : (top = made, 0)) {
                rc = kiln_fail(err, "out of memory");
                ytree_free(made);
            } else if (made->type != YN_SCALAR) {
                stack[depth++] = made;
            }
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    if (rc) {
        ytree_free(top);
        return -1;
    }
    if (!top) return kiln_fail(err, "%s: empty task file", name);
    *root = top;
    return 0;
}

int ytree_load(const char *path, YNode **root, KilnErr *err) {
    char *text;
    size_t len;
    if (kiln_read_file(path, &text, &len, err)) return -1;
    int rc = ytree_load_string(text, len, path, root, err);
    free(text);
    return rc;
}
