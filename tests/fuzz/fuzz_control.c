// fuzz_control: a run's live control file (control_parse).
#include "kiln/core.h"
#include "run/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    KilnErr err;
    KilnControl c;
    control_parse((const char *)data, size, "RUN/control", &c, &err);
    return 0;
}
