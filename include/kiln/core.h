// core.h: errors, allocation, random numbers, byte buffers, clocks and durable
// file writes.
// Every library call that can fail takes a KilnErr* and returns 0 or -1;
// the message says what failed and where (file, key, offset), and the
// caller decides whether to print it.
#ifndef KILN_CORE_H
#define KILN_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    char msg[1024];
} KilnErr;

// Formats msg into err (if err is not NULL) and returns -1.
int kiln_fail(KilnErr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Prefixes an existing message: "prefix: old message". Returns -1.
int kiln_wrap(KilnErr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// 64-byte aligned, zeroed allocation; on failure sets err with the byte count.
void *kiln_alloc(size_t bytes, KilnErr *err);
void kiln_free(void *p);

// Random numbers: splitmix64 for seeding and hashing, xoshiro256** for streams.
typedef struct {
    uint64_t s[4];
} KilnRng;
uint64_t kiln_hash64(uint64_t x);
void kiln_rng_seed(KilnRng *rng, uint64_t seed);
uint64_t kiln_rng_u64(KilnRng *rng);
float kiln_rng_uniform(KilnRng *rng);  // [0, 1)
float kiln_rng_normal(KilnRng *rng);   // N(0, 1), Box-Muller

// A growable byte string, always NUL-terminated when data != NULL.
typedef struct {
    char *data;
    size_t len, cap;
} KilnBuf;

int kbuf_reserve(KilnBuf *b, size_t cap);                 // -1 when out of memory
int kbuf_append(KilnBuf *b, const void *p, size_t n);     // -1 when out of memory
int kbuf_puts(KilnBuf *b, const char *s);
int kbuf_putc(KilnBuf *b, char c);
int kbuf_printf(KilnBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));  // appends
int kbuf_set(KilnBuf *b, const void *p, size_t n);        // replace contents
void kbuf_clear(KilnBuf *b);                              // len = 0, keeps memory
void kbuf_swap(KilnBuf *a, KilnBuf *b);
void kbuf_free(KilnBuf *b);
// Appends s[0..n) as the body of a JSON string (no quotes): escapes ", \, control
// characters; invalid UTF-8 bytes become U+FFFD so the output is always valid JSON.
int kbuf_json_escape(KilnBuf *b, const char *s, size_t n);
int kbuf_json_str(KilnBuf *b, const char *s);  // the NUL-terminated s as a quoted JSON string

double kiln_now(void);  // monotonic seconds
// The process's peak resident memory since the last reset (Linux; 0 elsewhere).
void kiln_peak_rss_reset(void);
double kiln_peak_rss_bytes(void);

// The shortest %g text (6 to 9 digits) that reads back as exactly v; returns buf.
const char *kiln_float_str(float v, char buf[32]);

// Durable writes: data goes to a new temp file beside path (".kiln-<random>.tmp",
// created exclusively: nothing planted there is followed or overwritten), is
// fsync'd, then renamed over path, so a crash leaves either the old file or the
// new one, never half of one.
// An existing path that is not a regular file (/dev/null, a FIFO) is refused.
typedef struct {
    FILE *f;
    char *path;
    char *tmp;
    int failed;
} KilnAtomicFile;
int kiln_atomic_open(KilnAtomicFile *af, const char *path, KilnErr *err);
int kiln_atomic_write(KilnAtomicFile *af, const void *data, size_t n, KilnErr *err);
int kiln_atomic_commit(KilnAtomicFile *af, KilnErr *err);  // fsync + rename + fsync dir
void kiln_atomic_abort(KilnAtomicFile *af);                // remove the temp file
int kiln_fsync_dir(const char *dir, KilnErr *err);
// Creates "<dir>/.<prefix>-<12 random hex>.tmp" (name into buf) exclusively:
// a file opened O_CREAT|O_EXCL|O_NOFOLLOW for writing, mode 0666 less the umask
// (returns the fd), or with is_dir a directory, mode 0755 less the umask
// (returns 0). -1 with errno set. Never follows or reuses an existing entry.
int kiln_temp_create(char *buf, size_t cap, const char *dir, const char *prefix, int is_dir);
// Removes the files directly in dir, then dir; never follows a symlink (one at
// dir itself is left alone) and never recurses. -1 when dir is not removed.
int kiln_remove_tree(const char *dir);
int kiln_mkdirs(const char *path, KilnErr *err);

// A path tidied lexically, for names people read and ids: "a/./b//c/../d" ->
// "a/b/d", "tasks/../../data/x" -> "../data/x", "/../x" -> "/x", "" -> ".".
// Symlinks are not resolved (x/.. is dropped even where x is a link), so use it
// for what is shown and recorded, not to decide which file to open.
void kiln_path_normalize(const char *in, char *out, size_t cap);
// kiln_path_normalize's result where it names the same file as path (or
// neither exists), else path unchanged (a link inside it makes them differ):
// for paths kiln builds by joining ("tasks/../../shared/data") and then opens,
// shows and records in ids.
void kiln_path_tidy(const char *path, char *out, size_t cap);
// The path of target relative to directory dir, both resolved with realpath
// (so links agree with the file system): "../tok/gpt2.tiktoken". -1 (out
// unchanged) when either cannot be resolved.
int kiln_path_relative(const char *target, const char *dir, char *out, size_t cap);

// Writes data[0..n) then the string tail to path through kiln_atomic_* (temp,
// fsync, rename); on failure the temp file is removed and path left as it was.
int kiln_write_file_atomic(const char *path, const void *data, size_t n, const char *tail, KilnErr *err);

// A JSON tree as indented text and a newline, written with kiln_write_file_atomic.
struct cJSON;
int kiln_write_json(const char *path, const struct cJSON *j, KilnErr *err);

// SHA-256 of a file's bytes as 64 lowercase hex digits.
int kiln_sha256_file(const char *path, char hex[65], KilnErr *err);

// Reads a whole file into a malloc'd buffer (NUL-terminated for convenience).
int kiln_read_file(const char *path, char **data, size_t *len, KilnErr *err);

// Byte spans of the values of the named keys in the top-level JSON object
// s[0..n): spans[k] = {start, end}, or {0, 0} when absent. -1 when s is not one
// well-formed object (nested values are checked only as far as skipping needs).
int kiln_json_fields(const char *s, size_t n, const char *const *names, int nnames, size_t (*spans)[2]);
// Decodes the JSON string literal s[0..n) (quotes included) into out, which
// needs n bytes; *len gets the decoded length. -1 when it is not one string.
int kiln_json_string(const char *s, size_t n, char *out, size_t *len);

const char *kiln_version(void);
const char *kiln_git_commit(void);

#endif
