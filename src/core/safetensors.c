// safetensors.c: the weight format of the Hugging Face ecosystem.
#include "core/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int st_write(const char *path, const KilnStTensor *ts, int n, const char *const *meta_keys,
             const char *const *meta_vals, int n_meta, KilnErr *err) {
    cJSON *h = cJSON_CreateObject();
    if (!h) return kiln_fail(err, "%s: out of memory", path);
    if (n_meta > 0) {
        cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
        for (int i = 0; i < n_meta; i++) cJSON_AddStringToObject(meta, meta_keys[i], meta_vals[i]);
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        cJSON *t = cJSON_AddObjectToObject(h, ts[i].name);
        cJSON_AddStringToObject(t, "dtype", "F32");
        cJSON *shape = cJSON_AddArrayToObject(t, "shape");
        size_t count = 1;
        for (int d = 0; d < ts[i].ndim; d++) {
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)ts[i].shape[d]));
            count *= (size_t)ts[i].shape[d];
        }
        cJSON *offs = cJSON_AddArrayToObject(t, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        off += count * sizeof(float);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
    }
    char *js = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!js) return kiln_fail(err, "%s: out of memory building the header", path);
    size_t hl = strlen(js), padded = (hl + 7) & ~(size_t)7;  // keep tensor data 8-byte aligned
    KilnAtomicFile af;
    if (kiln_atomic_open(&af, path, err)) {
        free(js);
        return -1;
    }
    uint64_t hlen = padded;
    kiln_atomic_write(&af, &hlen, 8, err);
    kiln_atomic_write(&af, js, hl, err);
    kiln_atomic_write(&af, "        ", padded - hl, err);
    free(js);
    for (int i = 0; i < n; i++) {
        size_t count = 1;
        for (int d = 0; d < ts[i].ndim; d++) count *= (size_t)ts[i].shape[d];
        kiln_atomic_write(&af, ts[i].data, count * sizeof(float), err);
    }
    return kiln_atomic_commit(&af, err);
}

void st_close(KilnStFile *f) {
    free(f->buf);
    cJSON_Delete(f->header);
    memset(f, 0, sizeof *f);
}

static int dtype_size(const char *dt) {
    static const char *names[] = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "U16", "U32", "U64"};
    static const int sizes[] = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1, 2, 4, 8};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(dt, names[i])) return sizes[i];
    return 0;
}

// A JSON number that is a whole number in [0, 2^53]: sizes and offsets convert exactly.
static int is_whole(const cJSON *x) {
    return cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble <= 9007199254740992.0 &&
           x->valuedouble == floor(x->valuedouble);
}

int st_open(KilnStFile *f, const char *path, KilnErr *err) {
    char *buf;
    size_t len;
    memset(f, 0, sizeof *f);
    if (kiln_read_file(path, &buf, &len, err)) return -1;
    return st_parse(f, path, buf, len, err);
}

int st_parse(KilnStFile *f, const char *path, char *buf, size_t len, KilnErr *err) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    f->buf = (uint8_t *)buf;
    f->len = len;
    if (len < 8) {
        st_close(f);
        return kiln_fail(err, "%s: truncated safetensors file (%zu bytes)", path, len);
    }
    uint64_t hl;
    memcpy(&hl, buf, 8);
    if (hl > len - 8 || hl > 100u * 1024 * 1024) {
        st_close(f);
        return kiln_fail(err, "%s: header length %llu does not fit in the %zu-byte file (truncated?)",
                         path, (unsigned long long)hl, len);
    }
    f->data_start = 8 + hl;
    cJSON *h = cJSON_ParseWithLength(buf + 8, hl);
    if (!h || !cJSON_IsObject(h)) {
        cJSON_Delete(h);
        st_close(f);
        return kiln_fail(err, "%s: header is not a JSON object", path);
    }
    f->header = h;
    size_t data_len = len - f->data_start;
    cJSON *t;
    cJSON_ArrayForEach(t, h) {
        if (!strcmp(t->string, "__metadata__")) continue;
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
        cJSON *offs = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
        int esize = cJSON_IsString(dt) ? dtype_size(dt->valuestring) : 0;
        if (!esize || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2) {
            char name[256];
            snprintf(name, sizeof name, "%s", t->string);
            st_close(f);
            return kiln_fail(err, "%s: tensor '%s' has a malformed header entry", path, name);
        }
        double count = 1;
        cJSON *d;
        cJSON_ArrayForEach(d, shape) {
            if (!is_whole(d)) count = -1;
            else if (count >= 0) count *= d->valuedouble;
        }
        cJSON *ob = cJSON_GetArrayItem(offs, 0), *oe = cJSON_GetArrayItem(offs, 1);
        double b = ob->valuedouble, e = oe->valuedouble;
        if (count < 0 || !is_whole(ob) || !is_whole(oe) || e < b || e > (double)data_len || e - b != count * esize) {
            char name[256];
            snprintf(name, sizeof name, "%s", t->string);
            st_close(f);
            return kiln_fail(err, "%s: tensor '%s': offsets [%.0f, %.0f) do not match its shape or the %zu data bytes (truncated?)",
                             path, name, b, e, data_len);
        }
    }
    return 0;
}

const char *st_metadata(const KilnStFile *f, const char *key) {
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(f->header, "__metadata__");
    cJSON *v = meta ? cJSON_GetObjectItemCaseSensitive(meta, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int st_read_f32(const KilnStFile *f, const char *name, float *dst, int ndim, const long *shape,
                KilnErr *err) {
    cJSON *t = strcmp(name, "__metadata__") ? cJSON_GetObjectItemCaseSensitive(f->header, name) : NULL;
    if (!t) return kiln_fail(err, "%s: tensor '%s' is missing", f->path, name);
    cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    if (strcmp(dt->valuestring, "F32"))
        return kiln_fail(err, "%s: tensor '%s' is %s, expected F32", f->path, name, dt->valuestring);
    cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape");
    int ok = cJSON_GetArraySize(sh) == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = (long)cJSON_GetArrayItem(sh, i)->valuedouble == shape[i];
    if (!ok) {
        char got[128] = "", want[128] = "";
        cJSON *d;
        cJSON_ArrayForEach(d, sh) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%.0f", *got ? "," : "", d->valuedouble);
        for (int i = 0; i < ndim; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%ld", i ? "," : "", shape[i]);
        return kiln_fail(err, "%s: tensor '%s' has shape [%s], expected [%s]", f->path, name, got, want);
    }
    cJSON *offs = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    size_t b = (size_t)cJSON_GetArrayItem(offs, 0)->valuedouble;
    size_t e = (size_t)cJSON_GetArrayItem(offs, 1)->valuedouble;
    memcpy(dst, f->buf + f->data_start + b, e - b);
    return 0;
}
