// rundir.c: a run directory's shared small files (see rundir.h).
#include "core/rundir.h"

#include "kiln/core.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
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

// ---------------------------------------------------------------- lock
// The pid holding an flock on the file open as fd, from /proc/locks (Linux):
// the lock file itself stays empty, so taking the lock changes no file in the
// run. Matched by inode alone, since on overlay filesystems /proc/locks names
// the lower device rather than st_dev. -1 when none is found.
static long lock_holder(int fd) {
    struct stat st;
    FILE *f = fstat(fd, &st) == 0 ? fopen("/proc/locks", "r") : NULL;
    if (!f) return -1;
    char line[256], kind[16], mode[16], rw[16];
    long pid, found = -1;
    unsigned maj, min;
    unsigned long ino;
    while (found < 0 && fgets(line, sizeof line, f))
        if (sscanf(line, "%*d: %15s %15s %15s %ld %x:%x:%lu", kind, mode, rw, &pid, &maj, &min, &ino) == 7 &&
            !strcmp(kind, "FLOCK") && !strcmp(rw, "WRITE") && ino == (unsigned long)st.st_ino && pid > 0)
            found = pid;
    fclose(f);
    return found;
}

int rundir_lock(const char *dir, const char *what, int *fd_out, KilnErr *err) {
    char path[1100];
    snprintf(path, sizeof path, "%s/" RUNDIR_LOCK, dir);
    // O_CLOEXEC: a child must not inherit the lock and hold it past our death
    int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return kiln_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        *fd_out = fd;
        return 0;
    }
    int e = errno;
    long pid = e == EWOULDBLOCK ? lock_holder(fd) : -1;
    close(fd);
    if (e != EWOULDBLOCK) return kiln_fail(err, "%s: cannot lock: %s", path, strerror(e));
    if (pid > 0) return kiln_fail(err, "%s is in use by pid %ld (another %s)", dir, pid, what);
    return kiln_fail(err, "%s is in use (%s is locked by another %s)", dir, path, what);
}

void rundir_unlock(int fd) {
    if (fd >= 0) close(fd);  // closing the last descriptor of the open file drops the flock
}
