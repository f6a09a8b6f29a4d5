// fuzz_pipeline: a data pipeline YAML (pipeline_load: sources, stages and their
// parameters, output). pipeline_load takes a path, so the input goes to a file.
#include "fuzz_util.h"
#include "kiln/pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fuzz_write("pipeline.yaml", data, size, path, sizeof path);
    KilnErr err;
    KilnPipeline p;
    if (pipeline_load(&p, path, &err) == 0) pipeline_free(&p);
    return 0;
}
