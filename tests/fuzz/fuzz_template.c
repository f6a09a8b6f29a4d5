// fuzz_template: a task's Jinja-like template (tpl_parse), then "\n--\n" and a
// JSON record it is rendered with (tpl_render); without one, {"text": "x"}.
#include "fuzz_util.h"
#include "task/task_internal.h"

#include <cjson/cJSON.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *src, *rec_text;
    size_t sn, rn;
    fuzz_split(data, size, &src, &sn, &rec_text, &rn);
    char *s = strndup(src, sn);  // templates are C strings (a NUL ends one early)
    if (!s) return 0;
    char why[256];
    Template *t;
    if (tpl_parse(s, &t, why, sizeof why) == 0) {
        cJSON *rec = rec_text ? cJSON_ParseWithLength(rec_text, rn) : cJSON_Parse("{\"text\": \"x\"}");
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
