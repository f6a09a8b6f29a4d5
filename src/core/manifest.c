// manifest.c: reads a corpus's manifest.json to trace tokens back to documents.
#include "kiln/manifest.h"

#include <cjson/cJSON.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

struct KilnManifest {
    cJSON *root;
    char *path;
};

// A token count or offset: a whole number in [0, 2^53], so (long) is exact.
static int is_count(const cJSON *x) {
    return cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble <= 9007199254740992.0 &&
           x->valuedouble == (double)(long)x->valuedouble;
}

int manifest_load(KilnManifest **mp, const char *path, KilnErr *err) {
    char *text;
    size_t len;
    if (kiln_read_file(path, &text, &len, err)) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "shards"))) {
        cJSON_Delete(root);
        return kiln_fail(err, "%s: not a kiln manifest (no \"shards\" list)", path);
    }
    // every document entry is [source, id, start, ntokens]; checked once here
    const cJSON *sh, *d;
    cJSON_ArrayForEach(sh, cJSON_GetObjectItemCaseSensitive(root, "shards")) {
        const cJSON *docs = cJSON_GetObjectItemCaseSensitive(sh, "docs");
        int ok = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(sh, "path")) && cJSON_IsArray(docs);
        cJSON_ArrayForEach(d, docs) {
            ok = ok && cJSON_GetArraySize(d) == 4 && cJSON_IsString(cJSON_GetArrayItem(d, 0)) &&
                 cJSON_IsString(cJSON_GetArrayItem(d, 1)) && is_count(cJSON_GetArrayItem(d, 2)) &&
                 is_count(cJSON_GetArrayItem(d, 3));
        }
        if (!ok) {
            cJSON_Delete(root);
            return kiln_fail(err, "%s: a shard entry lacks path or docs of [source, id, start, ntokens] (start and ntokens whole numbers >= 0)",
                             path);
        }
    }
    KilnManifest *m = calloc(1, sizeof *m);
    if (!m) {
        cJSON_Delete(root);
        return kiln_fail(err, "out of memory");
    }
    m->root = root;
    m->path = strdup(path);
    *mp = m;
    return 0;
}

void manifest_free(KilnManifest *m) {
    if (!m) return;
    cJSON_Delete(m->root);
    free(m->path);
    free(m);
}

int manifest_find(const KilnManifest *m, const char *shard, long pos, const char **source, const char **id,
                  long *start, long *n, KilnErr *err) {
    const char *base = strrchr(shard, '/');
    base = base ? base + 1 : shard;
    const cJSON *sh;
    cJSON_ArrayForEach(sh, cJSON_GetObjectItemCaseSensitive(m->root, "shards")) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(sh, "path");
        if (!cJSON_IsString(p) || strcmp(p->valuestring, base)) continue;
        // documents are in token order: binary search on their starts
        const cJSON *docs = cJSON_GetObjectItemCaseSensitive(sh, "docs");
        int lo = 0, hi = cJSON_GetArraySize(docs) - 1, found = -1;
        const cJSON **items = malloc(sizeof *items * (size_t)(hi + 1 > 0 ? hi + 1 : 1));
        if (!items) return kiln_fail(err, "out of memory");
        int k = 0;
        const cJSON *d;
        cJSON_ArrayForEach(d, docs) items[k++] = d;
        while (lo <= hi) {
            int mid = (lo + hi) / 2;
            long s = (long)cJSON_GetArrayItem(items[mid], 2)->valuedouble;
            long len = (long)cJSON_GetArrayItem(items[mid], 3)->valuedouble;
            if (pos < s) hi = mid - 1;
            else if (pos >= s + len) lo = mid + 1;
            else {
                found = mid;
                break;
            }
        }
        int rc = -1;
        if (found >= 0) {
            const cJSON *e = items[found];
            *source = cJSON_GetArrayItem(e, 0)->valuestring;
            *id = cJSON_GetArrayItem(e, 1)->valuestring;
            *start = (long)cJSON_GetArrayItem(e, 2)->valuedouble;
            *n = (long)cJSON_GetArrayItem(e, 3)->valuedouble;
            rc = 0;
        } else {
            kiln_fail(err, "%s: token %ld is past the end of %s", m->path, pos, base);
        }
        free(items);
        return rc;
    }
    return kiln_fail(err, "%s: no shard %s", m->path, base);
}

int manifest_tokenizer(const char *path, char *out, size_t cap, KilnErr *err) {
    char *text;
    size_t len;
    if (kiln_read_file(path, &text, &len, err)) return -1;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *t = j ? cJSON_GetObjectItemCaseSensitive(j, "tokenizer") : NULL;
    int rc = cJSON_IsString(t) && t->valuestring[0] ? 0 : kiln_fail(err, "%s: no \"tokenizer\" string", path);
    if (!rc) {
        const char *v = t->valuestring;
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        int w = !strcmp(v, "bytes") || v[0] == '/' ? snprintf(out, cap, "%s", v)
                                                   : snprintf(out, cap, "%s/%s", dirname(dir), v);
        if (w < 0 || (size_t)w >= cap) rc = kiln_fail(err, "%s: tokenizer path too long", path);
    }
    cJSON_Delete(j);
    return rc;
}
