// fuzz_state: a checkpoint's state.json (checkpoint_parse_state: config, step,
// schedule and data position).
#include "kiln/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    KilnErr err;
    KilnConfig c;
    KilnTrainState st;
    checkpoint_parse_state((const char *)data, size, "state.json", &c, &st, &err);
    return 0;
}
