// fileio.c: whole-file reads and crash-safe writes (temp file, fsync, rename).
#include "kiln/core.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int kiln_read_file(const char *path, char **data, size_t *len, KilnErr *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return kiln_fail(err, "%s: cannot open: %s", path, strerror(errno));
    // fopen succeeds on a directory and ftell then reports LONG_MAX on Linux:
    // without this check the malloc of that size fails as "out of memory"
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return kiln_fail(err, "%s: is a directory", path);
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return kiln_fail(err, "%s: cannot seek: %s", path, strerror(errno));
    }
    long n = ftell(f);
    rewind(f);
    if (n < 0) {
        fclose(f);
        return kiln_fail(err, "%s: not a regular file", path);
    }
    char *buf = malloc((size_t)n + 1);
    if (!buf) {
        fclose(f);
        return kiln_fail(err, "%s: out of memory reading %ld bytes", path, n);
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        free(buf);
        return kiln_fail(err, "%s: short read (%zu of %ld bytes)", path, got, n);
    }
    buf[n] = 0;
    *data = buf;
    *len = (size_t)n;
    return 0;
}

int kiln_fsync_dir(const char *dir, KilnErr *err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return kiln_fail(err, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    if (rc != 0) return kiln_fail(err, "%s: fsync failed: %s", dir, strerror(errno));
    return 0;
}

void kiln_path_normalize(const char *in, char *out, size_t cap) {
    if (!cap) return;
    size_t n = strlen(in);
    int abs = in[0] == '/', k = 0, ups = 0;  // ups: leading ".." of a relative path
    const char **comp = malloc(sizeof *comp * (n / 2 + 1));
    size_t *len = malloc(sizeof *len * (n / 2 + 1));
    if (!comp || !len) {
        snprintf(out, cap, "%s", in);
        free(comp), free(len);
        return;
    }
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && in[j] != '/') j++;
        size_t l = j - i;
        if (l == 2 && in[i] == '.' && in[i + 1] == '.') {
            if (k > ups) k--;            // a/.. is nothing
            else if (!abs) comp[k] = in + i, len[k++] = 2, ups++;  // above the start: kept; "/.." is "/"
        } else if (l && !(l == 1 && in[i] == '.')) {
            comp[k] = in + i, len[k++] = l;
        }
        i = j + 1;
    }
    size_t o = 0;
    if (abs && o + 1 < cap) out[o++] = '/';
    for (int c = 0; c < k; c++) {
        if (c && o + 1 < cap) out[o++] = '/';
        for (size_t q = 0; q < len[c] && o + 1 < cap; q++) out[o++] = comp[c][q];
    }
    if (o == 0 && cap > 1) out[o++] = '.';
    out[o] = 0;
    free(comp), free(len);
}

void kiln_path_tidy(const char *path, char *out, size_t cap) {
    char norm[4096];
    kiln_path_normalize(path, norm, sizeof norm);
    struct stat a, b;
    int sa = stat(path, &a), sb = stat(norm, &b);
    int same = sa == 0 && sb == 0 ? a.st_dev == b.st_dev && a.st_ino == b.st_ino : sa != 0 && sb != 0;
    snprintf(out, cap, "%s", same && strlen(norm) < sizeof norm - 1 ? norm : path);
}

int kiln_path_relative(const char *target, const char *dir, char *out, size_t cap) {
    char *t = realpath(target, NULL), *d = realpath(dir, NULL);
    int rc = -1;
    if (t && d) {
        size_t common = 0, i = 0;  // length of the shared leading directories of d
        for (; t[i] && t[i] == d[i]; i++)
            if (t[i] == '/') common = i;
        if (!d[i] && t[i] == '/') common = i;  // target is inside dir
        if (!strcmp(d, "/")) common = 0;
        char buf[4096];
        size_t o = 0;
        buf[0] = 0;
        for (const char *c = strcmp(d, "/") ? d + common : ""; *c; c++)  // one ".." per directory of d below it
            if (*c == '/' && o + 4 < sizeof buf) memcpy(buf + o, "../", 3), o += 3, buf[o] = 0;
        int w = snprintf(out, cap, "%s%s", buf, t + common + 1);
        rc = w >= 0 && (size_t)w < cap ? 0 : -1;
    }
    free(t);
    free(d);
    return rc;
}

int kiln_mkdirs(const char *path, KilnErr *err) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return kiln_fail(err, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return kiln_fail(err, "%s: cannot create directory: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return kiln_fail(err, "%s: exists and is not a directory", path);
    return 0;
}

// The directory part of path ("." when it has none), into buf.
static int dir_of(const char *path, char *buf, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash) return snprintf(buf, cap, ".") >= (int)cap ? -1 : 0;
    size_t n = slash == path ? 1 : (size_t)(slash - path);  // "/x" lives in "/"
    if (n >= cap) return -1;
    memcpy(buf, path, n);
    buf[n] = 0;
    return 0;
}

// 48 random bits as 12 hex digits; getrandom, else time, pid and a counter
// (the exclusive create below is what makes it safe, this only avoids retries).
static void random_hex(char out[13]) {
    static _Atomic unsigned long counter;
    unsigned long long r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = (unsigned long long)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (unsigned long long)getpid() << 32 ^
            (unsigned long long)++counter * 0xbf58476d1ce4e5b9ull;
    }
    snprintf(out, 13, "%012llx", r & 0xffffffffffffull);
}

int kiln_temp_create(char *buf, size_t cap, const char *dir, const char *prefix, int is_dir) {
    for (int tries = 0; tries < 100; tries++) {
        char hex[13];
        random_hex(hex);
        if (snprintf(buf, cap, "%s/.%s-%s.tmp", dir, prefix, hex) >= (int)cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        // O_EXCL (and mkdir) never follow or reuse what is there, a planted
        // symlink included; the modes are what fopen and mkdir gave, less the umask
        int fd = is_dir ? mkdir(buf, 0755) : open(buf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd >= 0) return fd;
        if (errno != EEXIST) return -1;
    }
    errno = EEXIST;
    return -1;
}

int kiln_remove_tree(const char *dir) {
    // O_NOFOLLOW: a symlink planted at dir is never entered; unlinkat removes
    // the entries themselves (a link, not what it points at); subdirectories,
    // which kiln never writes there, make rmdir fail rather than be recursed into
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlinkat(fd, e->d_name, 0);
    closedir(d);
    return rmdir(dir);
}

int kiln_atomic_open(KilnAtomicFile *af, const char *path, KilnErr *err) {
    memset(af, 0, sizeof *af);
    // renaming a temp file over /dev/null or a FIFO would replace the device
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return kiln_fail(err, "%s: not a regular file; refusing to replace it", path);
    // the temp file is a short unique name beside path (a name that fits the
    // directory fits it, whatever path's own length), created exclusively
    size_t n = strlen(path), cap = n + 32;
    af->path = malloc(n + 1);
    af->tmp = malloc(cap);
    if (!af->path || !af->tmp) {
        free(af->path);
        free(af->tmp);
        return kiln_fail(err, "%s: out of memory", path);
    }
    memcpy(af->path, path, n + 1);
    int fd = -1;
    if (dir_of(path, af->tmp, cap) == 0) {
        char *dir = strdup(af->tmp);
        fd = dir ? kiln_temp_create(af->tmp, cap, dir, "kiln", 0) : -1;
        free(dir);
    }
    if (fd >= 0 && !(af->f = fdopen(fd, "wb"))) {
        int e = errno;
        close(fd);
        unlink(af->tmp);
        errno = e;
    }
    if (!af->f) {
        int e = errno;
        free(af->path);
        free(af->tmp);
        memset(af, 0, sizeof *af);
        return kiln_fail(err, "%s: cannot create: %s", path, strerror(e));
    }
    return 0;
}

int kiln_atomic_write(KilnAtomicFile *af, const void *data, size_t n, KilnErr *err) {
    if (af->failed) return -1;
    if (n && fwrite(data, 1, n, af->f) != n) {
        af->failed = 1;
        return kiln_fail(err, "%s: write failed: %s", af->path, strerror(errno));
    }
    return 0;
}

static void atomic_release(KilnAtomicFile *af) {
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
}

void kiln_atomic_abort(KilnAtomicFile *af) {
    if (!af->f) return;
    fclose(af->f);
    unlink(af->tmp);
    atomic_release(af);
}

int kiln_atomic_commit(KilnAtomicFile *af, KilnErr *err) {
    if (af->failed) {
        kiln_atomic_abort(af);
        return -1;
    }
    // the messages name the file being replaced (left as it was), not the temp
    // file, which is removed. ferror: a write through af->f (fprintf) that failed
    // earlier lost its bytes, yet a later fflush of the emptied buffer succeeds
    int rc = 0;
    if (ferror(af->f)) rc = kiln_fail(err, "%s: write failed", af->path);
    else if (fflush(af->f) != 0) rc = kiln_fail(err, "%s: write failed: %s", af->path, strerror(errno));
    else if (fsync(fileno(af->f)) != 0) rc = kiln_fail(err, "%s: fsync failed: %s", af->path, strerror(errno));
    if (fclose(af->f) != 0 && rc == 0)
        rc = kiln_fail(err, "%s: close failed: %s", af->path, strerror(errno));
    af->f = NULL;
    if (rc == 0 && rename(af->tmp, af->path) != 0)
        rc = kiln_fail(err, "%s: rename failed: %s", af->path, strerror(errno));
    if (rc != 0) {
        unlink(af->tmp);
    } else {
        char *d = strdup(af->path);
        if (d) rc = kiln_fsync_dir(dirname(d), err);
        free(d);
    }
    atomic_release(af);
    return rc;
}

int kiln_sha256_file(const char *path, char hex[65], KilnErr *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return kiln_fail(err, "%s: cannot open to checksum: %s", path, strerror(errno));
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    unsigned char buf[1 << 16], md[32];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) EVP_DigestUpdate(c, buf, n);
    int bad = ferror(f);
    unsigned len;
    EVP_DigestFinal_ex(c, md, &len);
    EVP_MD_CTX_free(c);
    fclose(f);
    if (bad) return kiln_fail(err, "%s: read error while checksumming", path);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

int kiln_write_file_atomic(const char *path, const void *data, size_t n, const char *tail, KilnErr *err) {
    KilnAtomicFile af;
    if (kiln_atomic_open(&af, path, err)) return -1;
    if (kiln_atomic_write(&af, data, n, err) || kiln_atomic_write(&af, tail, strlen(tail), err)) {
        kiln_atomic_abort(&af);
        return -1;
    }
    return kiln_atomic_commit(&af, err);
}

int kiln_write_json(const char *path, const cJSON *j, KilnErr *err) {
    char *text = cJSON_Print(j);
    if (!text) return kiln_fail(err, "%s: out of memory", path);
    int rc = kiln_write_file_atomic(path, text, strlen(text), "\n", err);
    cJSON_free(text);
    return rc;
}
