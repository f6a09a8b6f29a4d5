// fuzz_state: a checkpoint's state.json (checkpoint_parse_state: config, step,
// schedule and data position; checkpoint_parse_layout: a sharded checkpoint's
// layout and parts).
#include "kiln/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    KilnErr err;
    KilnConfig c;
    KilnTrainState st;
    KilnShardInfo layout;
    int parts;
    checkpoint_parse_state((const char *)data, size, "state.json", &c, &st, &err);
    checkpoint_parse_layout((const char *)data, size, "state.json", &layout, &parts, &err);
    return 0;
}
