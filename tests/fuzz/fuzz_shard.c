// fuzz_shard: a token shard (shard_open maps a file: header, token count,
// every token below the vocabulary size).
#include "core/shard.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fuzz_write("train_000000.bin", data, size, path, sizeof path);
    KilnErr err;
    KilnShard s;
    if (shard_open(&s, path, 50257, &err) == 0) shard_close(&s);
    return 0;
}
