// task_dump.c: prints a task's rendered items as JSON lines, or (with
// --filters) answers each {"gen": ..., "target": ...} line of stdin with the
// task's filter outputs and exact_match, for tests/task/check_tasks.py.
//   task_dump TASK.yaml DATA_DIR SHOTS SEED [LIMIT]
//   task_dump --filters TASK.yaml DATA_DIR < cases.jsonl
#include "kiln/core.h"
#include "kiln/task.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_str(KilnBuf *b, const char *key, const char *s) {
    kbuf_printf(b, ",\"%s\":", key);
    if (s) kbuf_json_str(b, s);
    else kbuf_puts(b, "null");
}

static int dump_items(KilnTask *t, int shots, uint64_t seed, long limit) {
    const KilnTaskItem *it;
    long n;
    KilnErr err;
    if (task_render(t, shots, seed, limit, &it, &n, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    KilnBuf b = {0};
    for (long i = 0; i < n; i++) {
        kbuf_clear(&b);
        kbuf_puts(&b, "{\"id\":");
        kbuf_json_str(&b, it[i].id);
        put_str(&b, "context", it[i].context);
        kbuf_puts(&b, ",\"choices\":[");
        for (int k = 0; k < it[i].nchoices; k++) {
            if (k) kbuf_putc(&b, ',');
            kbuf_json_str(&b, it[i].choices[k]);
        }
        kbuf_printf(&b, "],\"label\":%d,\"line\":%ld", it[i].label, it[i].line);
        put_str(&b, "target", it[i].target);
        put_str(&b, "group", it[i].group);
        kbuf_puts(&b, "}\n");
        fwrite(b.data, 1, b.len, stdout);
    }
    kbuf_free(&b);
    return 0;
}

static int dump_filters(KilnTask *t) {
    char *line = NULL;
    size_t cap = 0;
    KilnBuf b = {0};
    while (getline(&line, &cap, stdin) > 0) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *g = cJSON_GetObjectItem(o, "gen"), *tg = cJSON_GetObjectItem(o, "target");
        if (!cJSON_IsString(g) || !cJSON_IsString(tg)) {
            fprintf(stderr, "bad case line\n");
            return 1;
        }
        kbuf_clear(&b);
        kbuf_puts(&b, "{");
        for (int f = 0; f < task_nfilters(t); f++) {
            char *p = task_filter_apply(t, f, g->valuestring);
            if (f) kbuf_putc(&b, ',');
            kbuf_json_str(&b, task_filter_name(t, f));
            kbuf_puts(&b, ":[");
            kbuf_json_str(&b, p);
            kbuf_printf(&b, ",%d]", task_exact_match(t, p, tg->valuestring));
            free(p);
        }
        kbuf_puts(&b, "}\n");
        fwrite(b.data, 1, b.len, stdout);
        cJSON_Delete(o);
    }
    free(line);
    kbuf_free(&b);
    return 0;
}

int main(int argc, char **argv) {
    int filters = argc > 1 && !strcmp(argv[1], "--filters");
    if (argc < (filters ? 4 : 5)) {
        fprintf(stderr, "usage: task_dump TASK.yaml DATA_DIR SHOTS SEED [LIMIT] | --filters TASK.yaml DATA_DIR\n");
        return 2;
    }
    KilnTask *t;
    KilnErr err;
    if (task_load(&t, argv[1 + filters], argv[2 + filters], 0, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int rc = filters ? dump_filters(t)
                     : dump_items(t, atoi(argv[3]), strtoull(argv[4], NULL, 10), argc > 5 ? atol(argv[5]) : 0);
    task_free(t);
    return rc;
}
