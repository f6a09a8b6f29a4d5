// fuzz_report: the run directory `kiln report` reads, as metrics.jsonl, then
// "\n--\n" incidents.jsonl, config.yaml and env.json (a missing part: no file),
// rendered to HTML (report_render).
#include "core/rundir.h"
#include "fuzz_util.h"
#include "kiln/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[] = {RUNDIR_METRICS, RUNDIR_INCIDENTS, RUNDIR_CONFIG, RUNDIR_ENV};
    const char *part[4];
    size_t len[4];
    int k = fuzz_parts(data, size, part, len, 4);
    char path[128];
    for (int i = 0; i < 4; i++) {
        fuzz_write(names[i], part[i < k ? i : 0], i < k ? len[i] : 0, path, sizeof path);
        if (i >= k) unlink(path);
    }
    char *slash = strrchr(path, '/');
    *slash = 0;
    KilnErr err;
    KilnBuf out = {0};
    report_render(path, &out, &err);
    kbuf_free(&out);
    return 0;
}
