// fileio.c: whole-file reads and crash-safe writes (temp file, fsync, rename).
#include "kiln/core.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int kiln_atomic_open(KilnAtomicFile *af, const char *path, KilnErr *err) {
    memset(af, 0, sizeof *af);
    // renaming a temp file over /dev/null or a FIFO would replace the device
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return kiln_fail(err, "%s: not a regular file; refusing to replace it", path);
    size_t n = strlen(path);
    af->path = malloc(n + 1);
    af->tmp = malloc(n + 5);
    if (!af->path || !af->tmp) {
        free(af->path);
        free(af->tmp);
        return kiln_fail(err, "%s: out of memory", path);
    }
    memcpy(af->path, path, n + 1);
    snprintf(af->tmp, n + 5, "%s.tmp", path);
    af->f = fopen(af->tmp, "wb");
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
        return kiln_fail(err, "%s: write failed: %s", af->tmp, strerror(errno));
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
    int rc = 0;
    if (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0)
        rc = kiln_fail(err, "%s: flush failed: %s", af->tmp, strerror(errno));
    if (fclose(af->f) != 0 && rc == 0)
        rc = kiln_fail(err, "%s: close failed: %s", af->tmp, strerror(errno));
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
