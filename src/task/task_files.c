// task_files.c: where task files are found, for `kiln eval` and the
// decontaminate stage alike (kiln/task.h).
#include "kiln/task.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void task_default_dir(char *out, size_t n) {
    const char *env = getenv("KILN_TASKS");
    if (env && *env) {
        snprintf(out, n, "%s", env);
        return;
    }
    if (access("tasks", F_OK) == 0) {
        snprintf(out, n, "tasks");
        return;
    }
    char self[2048];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k > 0) {
        self[k] = 0;
        char joined[2100];
        snprintf(joined, sizeof joined, "%s/../tasks", dirname(self));
        kiln_path_tidy(joined, out, n);
    } else {
        snprintf(out, n, "tasks");
    }
}

void task_file_path(const char *dir, const char *name, char *out, size_t n) {
    size_t l = strlen(name);
    if (strchr(name, '/') || (l > 5 && !strcmp(name + l - 5, ".yaml"))) snprintf(out, n, "%s", name);
    else snprintf(out, n, "%s/%s.yaml", dir, name);
}
