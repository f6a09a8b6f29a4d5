// safetensors.h: read and write the safetensors format (Hugging Face):
//   u64 little-endian header length N, N bytes of JSON header (padded with spaces),
//   then the raw tensor bytes. Header: {"name": {"dtype": "F32", "shape": [...],
//   "data_offsets": [begin, end]}, ..., "__metadata__": {"key": "string", ...}}.
#ifndef KILN_SAFETENSORS_H
#define KILN_SAFETENSORS_H

#include "kiln/core.h"

// One tensor to write: float32 data of the given shape (ndim 1..4).
typedef struct {
    const char *name;
    const float *data;
    int ndim;
    long shape[4];
} KilnStTensor;

// Writes atomically. meta_keys/meta_vals: n_meta string pairs for __metadata__.
int st_write(const char *path, const KilnStTensor *ts, int n, const char *const *meta_keys,
             const char *const *meta_vals, int n_meta, KilnErr *err);

typedef struct {
    char path[1024];
    uint8_t *buf;      // whole file
    size_t len;
    size_t data_start; // 8 + header length
    void *header;      // cJSON*
} KilnStFile;

// Reads and validates a whole file: header JSON, dtypes, shapes and offsets in range.
int st_open(KilnStFile *f, const char *path, KilnErr *err);
// The same from a malloc'd buffer, which f takes over (freed by st_close, or on error).
int st_parse(KilnStFile *f, const char *name, char *buf, size_t len, KilnErr *err);
void st_close(KilnStFile *f);
// Copies tensor `name` (F32) into dst after checking its shape; errors name file and tensor.
int st_read_f32(const KilnStFile *f, const char *name, float *dst, int ndim, const long *shape,
                KilnErr *err);
// __metadata__ value or NULL.
const char *st_metadata(const KilnStFile *f, const char *key);

#endif
