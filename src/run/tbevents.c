// tbevents.c: TensorBoard event files: TFRecord framing around hand-encoded
// tensorflow.Event protos (event.proto, summary.proto field numbers below).
//
// record:  uint64 LE len | uint32 LE masked_crc32c(len bytes) | payload | uint32 LE masked_crc32c(payload)
// Event:   wall_time=1 double | step=2 int64 | file_version=3 string | summary=5 Summary | session_log=7 SessionLog
//          (6 is the deprecated log_message)
// Summary: value=1 repeated Value{tag=1 string, simple_value=2 float};  SessionLog: status=1 enum (START=1)
#include "kiln/core.h"
#include "run/track.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

// CRC-32C (Castagnoli), reflected polynomial 0x82F63B78: CRC_TABLE[i] is the CRC
// register after shifting byte i through it.
static const uint32_t CRC_TABLE[256] = {
    0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c,
    0x26a1e7e8, 0xd4ca64eb, 0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b,
    0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24, 0x105ec76f, 0xe235446c,
    0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
    0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc,
    0xbc267848, 0x4e4dfb4b, 0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a,
    0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35, 0xaa64d611, 0x580f5512,
    0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
    0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad,
    0x1642ae59, 0xe4292d5a, 0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a,
    0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595, 0x417b1dbc, 0xb3109ebf,
    0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
    0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f,
    0xed03a29b, 0x1f682198, 0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927,
    0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38, 0xdbfc821c, 0x2997011f,
    0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
    0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e,
    0x4767748a, 0xb50cf789, 0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859,
    0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46, 0x7198540d, 0x83f3d70e,
    0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
    0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de,
    0xdde0eb2a, 0x2f8b6829, 0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c,
    0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93, 0x082f63b7, 0xfa44e0b4,
    0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
    0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b,
    0xb4091bff, 0x466298fc, 0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c,
    0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033, 0xa24bb5a6, 0x502036a5,
    0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
    0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975,
    0x0e330a81, 0xfc588982, 0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d,
    0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622, 0x38cc2a06, 0xcaa7a905,
    0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
    0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8,
    0xe52cc12c, 0x1747422f, 0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff,
    0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0, 0xd3d3e1ab, 0x21b862a8,
    0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
    0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78,
    0x7fab5e8c, 0x8dc0dd8f, 0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee,
    0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1, 0x69e9f0d5, 0x9b8273d6,
    0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
    0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69,
    0xd5cf889d, 0x27a40b9e, 0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e,
    0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

static uint32_t crc32c(const void *data, size_t n) {
    const unsigned char *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = CRC_TABLE[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

uint32_t tb_masked_crc32c(const void *data, size_t n) {
    uint32_t c = crc32c(data, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

// ---------------------------------------------------------------- protobuf encoding
enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

static int put_varint(KilnBuf *b, uint64_t v) {
    unsigned char tmp[10];
    int n = 0;
    do {
        tmp[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return kbuf_append(b, tmp, (size_t)n);
}

static int put_key(KilnBuf *b, int field, int wire) { return put_varint(b, (uint64_t)(field << 3 | wire)); }

static int put_le(KilnBuf *b, uint64_t v, int bytes) {
    unsigned char tmp[8];
    for (int i = 0; i < bytes; i++) tmp[i] = (unsigned char)(v >> (8 * i));
    return kbuf_append(b, tmp, (size_t)bytes);
}

static int put_double(KilnBuf *b, int field, double x) {
    uint64_t u;
    memcpy(&u, &x, 8);
    return put_key(b, field, WIRE_FIXED64) || put_le(b, u, 8);
}

static int put_float(KilnBuf *b, int field, float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return put_key(b, field, WIRE_FIXED32) || put_le(b, u, 4);
}

// int64 fields are varints of the two's-complement value (negative: 10 bytes)
static int put_int64(KilnBuf *b, int field, long long v) {
    return put_key(b, field, WIRE_VARINT) || put_varint(b, (uint64_t)v);
}

static int put_bytes(KilnBuf *b, int field, const void *p, size_t n) {
    return put_key(b, field, WIRE_LEN) || put_varint(b, n) || kbuf_append(b, p, n);
}

// ---------------------------------------------------------------- records
static void put_u64le(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u32le(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static int write_record(KilnTbWriter *w, const KilnBuf *payload, KilnErr *err) {
    unsigned char head[12], tail[4];
    put_u64le(head, payload->len);
    put_u32le(head + 8, tb_masked_crc32c(head, 8));
    put_u32le(tail, tb_masked_crc32c(payload->data, payload->len));
    if (fwrite(head, 1, 12, w->f) != 12 || fwrite(payload->data, 1, payload->len, w->f) != payload->len ||
        fwrite(tail, 1, 4, w->f) != 4)
        return kiln_fail(err, "%s: write failed: %s", w->path, strerror(errno));
    return 0;
}

// Frames and writes the Event in ev (built by the caller), then frees it.
static int finish_event(KilnTbWriter *w, KilnBuf *ev, int oom, KilnErr *err) {
    int rc = oom ? kiln_fail(err, "%s: out of memory encoding an event", w->path) : write_record(w, ev, err);
    kbuf_free(ev);
    return rc;
}

int tb_scalar(KilnTbWriter *w, const char *tag, long long step, float value, double wall_time, KilnErr *err) {
    KilnBuf val = {0}, sum = {0}, ev = {0};
    int oom = put_bytes(&val, 1, tag, strlen(tag)) || put_float(&val, 2, value) ||
              put_bytes(&sum, 1, val.data, val.len) || put_double(&ev, 1, wall_time) ||
              put_int64(&ev, 2, step) || put_bytes(&ev, 5, sum.data, sum.len);
    kbuf_free(&val);
    kbuf_free(&sum);
    return finish_event(w, &ev, oom, err);
}

int tb_session_start(KilnTbWriter *w, long long step, double wall_time, KilnErr *err) {
    static const unsigned char start[2] = {1 << 3 | WIRE_VARINT, 1};  // SessionLog{status: START}
    KilnBuf ev = {0};
    int oom = put_double(&ev, 1, wall_time) || put_int64(&ev, 2, step) || put_bytes(&ev, 7, start, sizeof start);
    return finish_event(w, &ev, oom, err);
}

// Opens DIR/events.out.tfevents.<secs>.<host>, or with ".1", ".2", ... appended
// when a run restarted within the same second already made that name.
static int create_file(KilnTbWriter *w, const char *dir, double wall_time, KilnErr *err) {
    char host[256] = "localhost";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0]) strcpy(host, "localhost");
    host[sizeof host - 1] = 0;
    for (char *c = host; *c; c++)
        if (*c == '/') *c = '_';
    for (int k = 0; k < 1000; k++) {
        int n = snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%010lld.%s", dir, (long long)wall_time,
                         host);
        if (k > 0 && n > 0 && (size_t)n < sizeof w->path)
            n += snprintf(w->path + n, sizeof w->path - (size_t)n, ".%d", k);
        if (n < 0 || (size_t)n >= sizeof w->path) return kiln_fail(err, "%s: directory path too long", dir);
        int fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0 && errno == EEXIST) continue;
        if (fd < 0) return kiln_fail(err, "%s: cannot create: %s", w->path, strerror(errno));
        w->f = fdopen(fd, "wb");
        if (!w->f) {
            close(fd);
            return kiln_fail(err, "%s: cannot open: %s", w->path, strerror(errno));
        }
        return 0;
    }
    return kiln_fail(err, "%s: too many event files for this second", w->path);
}

int tb_open(KilnTbWriter *w, const char *dir, double wall_time, KilnErr *err) {
    memset(w, 0, sizeof *w);
    if (kiln_mkdirs(dir, err) || create_file(w, dir, wall_time, err)) return -1;
    static const char version[] = "brain.Event:2";  // TensorBoard reads session_log restarts from version 2 on
    KilnBuf ev = {0};
    int oom = put_double(&ev, 1, wall_time) || put_bytes(&ev, 3, version, sizeof version - 1);
    if (finish_event(w, &ev, oom, err) || tb_flush(w, err)) {
        tb_close(w);
        return -1;
    }
    return 0;
}

int tb_flush(KilnTbWriter *w, KilnErr *err) {
    if (w->f && fflush(w->f) != 0) return kiln_fail(err, "%s: write failed: %s", w->path, strerror(errno));
    return 0;
}

void tb_close(KilnTbWriter *w) {
    if (w->f) fclose(w->f);
    w->f = NULL;
}
