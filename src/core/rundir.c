// rundir.c: a run directory's shared small files (see rundir.h).
#include "core/rundir.h"

#include "kiln/core.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int rundir_ckpt_step(const char *name, int *step) {
    int s, used = 0;
    if (sscanf(name, "ckpt-%8d%n", &s, &used) != 1 || used != 13 || name[used]) return -1;
    *step = s;
    return 0;
}

// ---------------------------------------------------------------- heartbeat
int rundir_write_heartbeat(const char *run_dir, long pid, long step, double time) {
    char tmp[1100], path[1100];
    snprintf(path, sizeof path, "%s/" RUNDIR_HEARTBEAT, run_dir);
    // a unique temp name made exclusively: a link planted at a fixed name
    // would have the write truncate whatever it points at
    int fd = kiln_temp_create(tmp, sizeof tmp, run_dir, RUNDIR_HEARTBEAT, 0);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    fprintf(f, "%ld %ld %.3f\n", pid, step, time);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int rundir_parse_heartbeat(const char *s, size_t n, KilnHeartbeat *hb) {
    char buf[128];
    if (n == 0 || n >= sizeof buf || memchr(s, 0, n)) return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    // each field starts with a digit (strtol would skip spaces and take signs);
    // strtol/strtod then refuse junk and overflow
    char *p = buf, *end;
    errno = 0;
    if (!isdigit((unsigned char)*p)) return -1;
    long pid = strtol(p, &end, 10);
    if (*end != ' ' || errno || pid <= 0) return -1;
    p = end + 1;
    if (!isdigit((unsigned char)*p)) return -1;
    long step = strtol(p, &end, 10);
    if (*end != ' ' || errno) return -1;
    p = end + 1;
    if (!isdigit((unsigned char)*p)) return -1;
    double t = strtod(p, &end);
    if (errno || !isfinite(t)) return -1;
    while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t') end++;
    if (*end) return -1;
    hb->pid = pid, hb->step = step, hb->time = t;
    return 0;
}

// Reads RUN/name whole; -1 when it cannot (the callers treat that as "absent").
static int read_small(const char *run_dir, const char *name, char **data, size_t *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", run_dir, name);
    KilnErr e;
    return kiln_read_file(path, data, len, &e);
}

int rundir_read_heartbeat(const char *run_dir, KilnHeartbeat *hb) {
    char *text;
    size_t n;
    if (read_small(run_dir, RUNDIR_HEARTBEAT, &text, &n)) return -1;
    int rc = rundir_parse_heartbeat(text, n, hb);
    free(text);
    return rc;
}

// ---------------------------------------------------------------- trainer.pid
int rundir_write_pid(const char *run_dir, long pid) {
    char path[1100];
    snprintf(path, sizeof path, "%s/" RUNDIR_PID, run_dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "%ld\n", pid);
    return fclose(f) == 0 ? 0 : -1;
}

void rundir_remove_pid(const char *run_dir) {
    char path[1100];
    snprintf(path, sizeof path, "%s/" RUNDIR_PID, run_dir);
    unlink(path);
}

int rundir_read_pid(const char *run_dir, long *pid) {
    char *text, *end;
    size_t n;
    if (read_small(run_dir, RUNDIR_PID, &text, &n)) return -1;
    long p = strtol(text, &end, 10);
    int none = end == text;
    free(text);
    if (none) return -1;
    *pid = p;
    return 0;
}
