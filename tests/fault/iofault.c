// iofault.c: an LD_PRELOAD shim that makes kiln's file writes fail the ways a
// full, read-only or failing disk does, for tests/test_iofault.sh.
//
//   KILN_FAULT=enospc     writes to a target fail with ENOSPC once AFTER bytes
//                         have been written to targets (the crossing write is short)
//   KILN_FAULT=short      every write to a target after AFTER bytes writes only
//                         half of what it was given (at least 1 byte): a correct
//                         writer loops and its output is unchanged
//   KILN_FAULT=erofs      creating or writing a target (open with O_CREAT or for
//                         writing, fopen for writing, mkdir, rename or renameat2 to or from
//                         it) fails with EROFS after AFTER such calls succeeded
//   KILN_FAULT=eio_fsync  fsync/fdatasync of a target fails with EIO after AFTER
//                         calls succeeded
//   KILN_FAULT_PATH       a target is a path containing this substring (unset:
//                         every path); a descriptor is a target when it was
//                         opened under such a path
//   KILN_FAULT_AFTER      N (default 0)
//   KILN_FAULT_LOG        a file to which each injected fault appends one line
//
// glibc's stdio writes through its internal __write, which LD_PRELOAD cannot
// interpose; so a stream opened for writing on a target (fopen, fdopen) is
// replaced by an fopencookie stream whose writes go through the faulty write
// below, and fileno() of it answers the real descriptor (kiln fsyncs it).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

enum { F_NONE, F_ENOSPC, F_SHORT, F_EROFS, F_EIO_FSYNC };
enum { MAX_FD = 65536, MAX_STREAMS = 256 };

static int mode = -1;
static const char *target;
static long long after;
static long long used;  // bytes written to targets, or matching calls made
static unsigned char is_target[MAX_FD];
static struct { FILE *f; int fd; } streams[MAX_STREAMS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

static void init(void) {
    if (mode >= 0) return;
    const char *m = getenv("KILN_FAULT"), *a = getenv("KILN_FAULT_AFTER");
    target = getenv("KILN_FAULT_PATH");
    if (target && !*target) target = NULL;
    after = a ? atoll(a) : 0;
    mode = !m                         ? F_NONE
           : !strcmp(m, "enospc")     ? F_ENOSPC
           : !strcmp(m, "short")      ? F_SHORT
           : !strcmp(m, "erofs")      ? F_EROFS
           : !strcmp(m, "eio_fsync")  ? F_EIO_FSYNC
                                      : F_NONE;
}

static int matches(const char *path) { return path && (!target || strstr(path, target)); }

static void note(const char *what, const char *detail) {
    const char *log = getenv("KILN_FAULT_LOG");
    if (!log) return;
    int (*ropen)(const char *, int, ...) = REAL(open);
    ssize_t (*rwrite)(int, const void *, size_t) = REAL(write);
    int fd = ropen(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    char line[1200];
    int n = snprintf(line, sizeof line, "%s %s\n", what, detail ? detail : "");
    if (n > (int)sizeof line - 1) n = (int)sizeof line - 1;
    if (rwrite(fd, line, (size_t)n) < 0) (void)0;
    REAL(close)(fd);
}

// One more matching call for erofs / eio_fsync: 1 when this one must fail.
static int call_fails(void) {
    pthread_mutex_lock(&mu);
    int fail = used >= after;
    if (!fail) used++;
    pthread_mutex_unlock(&mu);
    return fail;
}

static void track(int fd, const char *path) {
    if (fd >= 0 && fd < MAX_FD) is_target[fd] = (unsigned char)matches(path);
}

static int fd_target(int fd) { return mode != F_NONE && fd >= 0 && fd < MAX_FD && is_target[fd]; }

static int wants_write(int flags) { return (flags & O_ACCMODE) != O_RDONLY || (flags & O_CREAT); }

// ---------------------------------------------------------------- open and friends
static int open_common(int dirfd, const char *path, int flags, mode_t m) {
    init();
    if (mode == F_EROFS && wants_write(flags) && matches(path) && call_fails()) {
        note("erofs open", path);
        errno = EROFS;
        return -1;
    }
    int fd = REAL(openat)(dirfd, path, flags, m);
    track(fd, path);
    return fd;
}

#define MODE_ARG()                                   \
    mode_t m = 0;                                    \
    if (flags & (O_CREAT | O_TMPFILE)) {             \
        va_list ap;                                  \
        va_start(ap, flags);                         \
        m = (mode_t)va_arg(ap, int);                 \
        va_end(ap);                                  \
    }

int open(const char *path, int flags, ...) {
    MODE_ARG();
    return open_common(AT_FDCWD, path, flags, m);
}
int open64(const char *path, int flags, ...) {
    MODE_ARG();
    return open_common(AT_FDCWD, path, flags, m);
}
int openat(int dirfd, const char *path, int flags, ...) {
    MODE_ARG();
    return open_common(dirfd, path, flags, m);
}
int openat64(int dirfd, const char *path, int flags, ...) {
    MODE_ARG();
    return open_common(dirfd, path, flags, m);
}
int __open_2(const char *path, int flags) { return open_common(AT_FDCWD, path, flags, 0); }
int __open64_2(const char *path, int flags) { return open_common(AT_FDCWD, path, flags, 0); }
int creat(const char *path, mode_t m) { return open_common(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, m); }

int close(int fd) {
    if (fd >= 0 && fd < MAX_FD) is_target[fd] = 0;
    return REAL(close)(fd);
}

int mkdir(const char *path, mode_t m) {
    init();
    if (mode == F_EROFS && matches(path) && call_fails()) {
        note("erofs mkdir", path);
        errno = EROFS;
        return -1;
    }
    return REAL(mkdir)(path, m);
}

int rename(const char *from, const char *to) {
    init();
    if (mode == F_EROFS && (matches(from) || matches(to)) && call_fails()) {
        note("erofs rename", to);
        errno = EROFS;
        return -1;
    }
    return REAL(rename)(from, to);
}

int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned flags) {
    init();
    if (mode == F_EROFS && (matches(from) || matches(to)) && call_fails()) {
        note("erofs renameat2", to);
        errno = EROFS;
        return -1;
    }
    return REAL(renameat2)(fromfd, from, tofd, to, flags);
}

// ---------------------------------------------------------------- write and fsync
static ssize_t faulty_write(int fd, const void *buf, size_t n, off_t off, int positioned) {
    init();
    size_t give = n;
    if (fd_target(fd) && n > 0 && (mode == F_ENOSPC || mode == F_SHORT)) {
        pthread_mutex_lock(&mu);
        if (mode == F_ENOSPC) {
            long long room = after - used;
            if (room <= 0) {
                pthread_mutex_unlock(&mu);
                note("enospc write", "");
                errno = ENOSPC;
                return -1;
            }
            if ((long long)give > room) give = (size_t)room;
        } else if (used >= after && n > 1) {
            give = n / 2;
        }
        pthread_mutex_unlock(&mu);
    }
    ssize_t w = positioned ? REAL(pwrite)(fd, buf, give, off) : REAL(write)(fd, buf, give);
    if (w > 0 && fd_target(fd) && (mode == F_ENOSPC || mode == F_SHORT)) {
        pthread_mutex_lock(&mu);
        used += w;
        pthread_mutex_unlock(&mu);
    }
    return w;
}

ssize_t write(int fd, const void *buf, size_t n) { return faulty_write(fd, buf, n, 0, 0); }
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) { return faulty_write(fd, buf, n, off, 1); }
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) { return faulty_write(fd, buf, n, off, 1); }

static int faulty_sync(int fd, int data) {
    init();
    if (mode == F_EIO_FSYNC && fd_target(fd) && call_fails()) {
        note("eio fsync", "");
        errno = EIO;
        return -1;
    }
    return data ? REAL(fdatasync)(fd) : REAL(fsync)(fd);
}
int fsync(int fd) { return faulty_sync(fd, 0); }
int fdatasync(int fd) { return faulty_sync(fd, 1); }

// ---------------------------------------------------------------- stdio
static ssize_t cookie_write(void *c, const char *buf, size_t n) {
    int fd = (int)(long)c;
    size_t done = 0;
    while (done < n) {  // as glibc's own file write does: short writes are retried
        ssize_t w = faulty_write(fd, buf + done, n - done, 0, 0);
        if (w < 0) {
            if (errno == EINTR) continue;
            return done ? (ssize_t)done : -1;
        }
        done += (size_t)w;
    }
    return (ssize_t)done;
}
static ssize_t cookie_read(void *c, char *buf, size_t n) { return read((int)(long)c, buf, n); }
static int cookie_seek(void *c, off64_t *off, int whence) {
    off_t r = lseek((int)(long)c, (off_t)*off, whence);
    if (r < 0) return -1;
    *off = r;
    return 0;
}
static int cookie_close(void *c) {
    int fd = (int)(long)c;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < MAX_STREAMS; i++)
        if (streams[i].f && streams[i].fd == fd) streams[i].f = NULL;
    pthread_mutex_unlock(&mu);
    return close(fd);
}

static FILE *wrap(int fd, const char *m) {
    FILE *f = fopencookie((void *)(long)fd, m,
                          (cookie_io_functions_t){cookie_read, cookie_write, cookie_seek, cookie_close});
    if (!f) return NULL;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < MAX_STREAMS; i++)
        if (!streams[i].f) {
            streams[i].f = f, streams[i].fd = fd;
            break;
        }
    pthread_mutex_unlock(&mu);
    return f;
}

static int mode_writes(const char *m) { return strpbrk(m, "wa+") != NULL; }

FILE *fdopen(int fd, const char *m) {
    init();
    if (fd_target(fd) && mode_writes(m)) return wrap(fd, m);
    return REAL(fdopen)(fd, m);
}

static FILE *fopen_common(const char *path, const char *m, int is64) {
    init();
    if (mode == F_NONE || !mode_writes(m) || !matches(path)) return is64 ? REAL(fopen64)(path, m) : REAL(fopen)(path, m);
    int flags = strchr(m, '+') ? O_RDWR : O_WRONLY;
    if (m[0] == 'w') flags |= O_CREAT | O_TRUNC;
    if (m[0] == 'a') flags |= O_CREAT | O_APPEND;
    if (m[0] == 'r' && !strchr(m, '+')) flags = O_RDONLY;
    if (strchr(m, 'x')) flags |= O_EXCL;
    if (strchr(m, 'e')) flags |= O_CLOEXEC;
    int fd = open_common(AT_FDCWD, path, flags, 0666);
    if (fd < 0) return NULL;
    FILE *f = wrap(fd, m);
    if (!f) REAL(close)(fd);
    return f;
}
FILE *fopen(const char *path, const char *m) { return fopen_common(path, m, 0); }
FILE *fopen64(const char *path, const char *m) { return fopen_common(path, m, 1); }

int fileno(FILE *f) {
    pthread_mutex_lock(&mu);
    for (int i = 0; i < MAX_STREAMS; i++)
        if (streams[i].f == f) {
            int fd = streams[i].fd;
            pthread_mutex_unlock(&mu);
            return fd;
        }
    pthread_mutex_unlock(&mu);
    return REAL(fileno)(f);
}
