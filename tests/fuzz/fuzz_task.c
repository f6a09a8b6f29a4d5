// fuzz_task: an evaluation task YAML (task_load: the spec, its templates and
// answer rules; its data files do not exist here, so loading stops there or at
// the spec's error).
#include "fuzz_util.h"
#include "kiln/task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fuzz_write("task.yaml", data, size, path, sizeof path);
    KilnErr err;
    KilnTask *t;
    if (task_load(&t, path, "/nonexistent/kiln-fuzz-data", 1, &err) == 0) task_free(t);
    return 0;
}
