// fuzz_template: a task's Jinja-like template (tpl_parse), then "\n--\n" and a
// JSON record it is rendered with (tpl_render); without one, {"text": "x"}.
#include "fuzz_util.h"
#include "task/task_internal.h"

#include <cjson/cJSON.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *part[2];
    size_t len[2];
    int k = fuzz_parts(data, size, part, len, 2);
    char *s = strndup(part[0], len[0]);  // templates are C strings (a NUL ends one early)
    if (!s) return 0;
    char why[256];
    Template *t;
    if (tpl_parse(s, &t, why, sizeof why) == 0) {
        cJSON *rec = k > 1 ? cJSON_ParseWithLength(part[1], len[1]) : cJSON_Parse("{\"text\": \"x\"}");
        if (rec) {
            KilnBuf out = {0};
            tpl_render(t, rec, 3, &out, why, sizeof why);
            kbuf_free(&out);
            cJSON_Delete(rec);
        }
        tpl_free(t);
    }
    free(s);
    return 0;
}
