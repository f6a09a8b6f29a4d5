// fuzz_readers: a libFuzzer target for every reader kiln has. The first input byte
// picks the reader; the rest is the file. Build with
//   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DKILN_FUZZ=ON && cmake --build build-fuzz
//   build-fuzz/tests/fuzz_readers -max_total_time=60 tests/fuzz/corpus
// (CTest's test_io runs a deterministic mutation fuzz of the same readers.)
#include "kiln/checkpoint.h"
#include "kiln/config.h"
#include "core/safetensors.h"
#include "core/shard.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    KilnErr err;
    const char *body = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 4) {
    case 0: {  // YAML config
        KilnConfig c;
        kiln_config_defaults(&c);
        if (kiln_config_load_yaml_string(&c, body, n, "fuzz.yaml", &err) == 0) kiln_config_finalize(&c, &err);
        break;
    }
    case 1: {  // safetensors
        char *buf = malloc(n ? n : 1);
        memcpy(buf, body, n);
        KilnStFile f;
        if (st_parse(&f, "fuzz.safetensors", buf, n, &err) == 0) {
            float out[64];
            long shape[2] = {4, 4};
            st_read_f32(&f, "a", out, 2, shape, &err);
            st_metadata(&f, "format");
            st_close(&f);
        }
        break;
    }
    case 2: {  // checkpoint state.json
        KilnConfig c;
        KilnTrainState st;
        checkpoint_parse_state(body, n, "fuzz.json", &c, &st, &err);
        break;
    }
    case 3: {  // token shard (mmap'd from a file)
        char path[64];
        snprintf(path, sizeof path, "/tmp/kiln_fuzz_shard_%d.bin", (int)getpid());
        FILE *f = fopen(path, "wb");
        if (!f) return 0;
        fwrite(body, 1, n, f);
        fclose(f);
        KilnShard s;
        if (shard_open(&s, path, 50257, &err) == 0) shard_close(&s);
        unlink(path);
        break;
    }
    }
    return 0;
}
