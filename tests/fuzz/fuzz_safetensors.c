// fuzz_safetensors: a safetensors file (st_parse: header JSON, dtypes, shapes,
// offsets), then every small tensor the header lists read with its own shape,
// one with a wrong shape, and the metadata, as a checkpoint load does.
#include "core/safetensors.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size ? size : 1);  // st_parse takes the buffer over
    if (!buf) return 0;
    memcpy(buf, data, size);
    KilnErr err;
    KilnStFile f;
    if (st_parse(&f, "fuzz.safetensors", buf, size, &err)) return 0;
    static float out[1 << 14];
    const cJSON *t;
    cJSON_ArrayForEach(t, (const cJSON *)f.header) {
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
        int nd = cJSON_GetArraySize(shape);
        if (!t->string || nd > 4) continue;
        long dims[4] = {0}, n = 1;
        for (int d = 0; d < nd; d++) {
            const cJSON *v = cJSON_GetArrayItem(shape, d);
            dims[d] = cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e6 ? (long)v->valuedouble : 0;
            n *= dims[d] ? dims[d] : 1;
        }
        if (n > (long)(sizeof out / sizeof *out)) continue;
        st_read_f32(&f, t->string, out, nd, dims, &err);
        long wrong[4] = {dims[0] + 1, dims[1], dims[2], dims[3]};
        st_read_f32(&f, t->string, out, nd ? nd : 1, wrong, &err);
    }
    st_metadata(&f, "format");
    st_metadata(&f, "kiln.config");
    st_close(&f);
    return 0;
}
