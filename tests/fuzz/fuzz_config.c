// fuzz_config: the training config YAML (kiln_config_load_yaml_string, then
// finalize's range checks). scripts/fuzz.sh builds and runs every fuzz_*.c.
#include "kiln/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    KilnErr err;
    KilnConfig c;
    kiln_config_defaults(&c);
    if (kiln_config_load_yaml_string(&c, (const char *)data, size, "fuzz.yaml", &err) == 0)
        kiln_config_finalize(&c, &err);
    return 0;
}
