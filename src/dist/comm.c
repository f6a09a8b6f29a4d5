// comm.c: KilnComm over MPI, or one rank without it.
#include "dist/comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef KILN_HAVE_MPI
#include <mpi.h>
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// The ranks a launcher started, from its environment (0: no launcher).
static int launcher_size(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0) return atoi(v);
    }
    return getenv("PMIX_RANK") ? 1 : 0;  // a PMIx launcher that does not say its size
}

// Where a group's time and bytes are counted: its world's.
static inline KilnComm *stats_of(KilnComm *c) { return c->world ? c->world : c; }

// Marks the wait in a blocking collective for the watchdog.
static inline double busy(KilnComm *c, const char *op) {
    c = stats_of(c);
    double t = now_s();
    atomic_store(&c->busy_op, op);
    atomic_store(&c->busy_since, t);
    return t;
}

static inline void idle(KilnComm *c, double t0) {
    c = stats_of(c);
    atomic_store(&c->busy_since, 0.0);
    c->wait_s += now_s() - t0;
}

// Seconds since path last changed; a large number when it cannot be read.
static double age_of(const char *path) {
    struct stat sb;
    if (!path[0] || stat(path, &sb) != 0) return 1e30;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)(ts.tv_sec - sb.st_mtim.tv_sec) + (ts.tv_nsec - sb.st_mtim.tv_nsec) * 1e-9;
}

static void *watchdog(void *arg) {
    KilnComm *c = arg;
    while (!atomic_load(&c->dog_stop)) {
        struct timespec nap = {0, 200000000};  // 0.2 s
        nanosleep(&nap, NULL);
        double since = atomic_load(&c->busy_since);
        if (since <= 0) continue;
        double waited = now_s() - since;
        if (waited < c->timeout_s || age_of(c->alive_path) < c->timeout_s) continue;
        // stderr, as the launcher shows it: the job's owner must learn why it ended
        fprintf(stderr,
                "kiln: rank %d of %d: step %d: waited %.0f s in %s for the other ranks, and rank 0's heartbeat "
                "(%s) is as old: a rank died or hangs (parallel.timeout_s = %g); ending this rank so that the "
                "launcher ends the job; the last checkpoint is intact\n",
                c->rank, c->size, c->step + 1, waited, atomic_load(&c->busy_op), c->alive_path, c->timeout_s);
        fflush(stderr);
        _exit(1);  // not exit(): the main thread is inside MPI
    }
    return NULL;
}

int comm_watchdog_start(KilnComm *c, double timeout_s, const char *alive_path, KilnErr *err) {
    if (c->size == 1 || timeout_s <= 0) return 0;
    c->timeout_s = timeout_s;
    snprintf(c->alive_path, sizeof c->alive_path, "%s", alive_path);
    atomic_store(&c->dog_stop, 0);
    if (pthread_create(&c->dog, NULL, watchdog, c) != 0) return kiln_fail(err, "cannot start the watchdog thread");
    c->dog_on = 1;
    return 0;
}

static void watchdog_stop(KilnComm *c) {
    if (!c->dog_on) return;
    atomic_store(&c->dog_stop, 1);
    pthread_join(c->dog, NULL);
    c->dog_on = 0;
}

#ifdef KILN_HAVE_MPI

// A group's communicator (comm_split), else the world's.
#define MCOMM(c) ((c)->handle ? *(MPI_Comm *)(c)->handle : MPI_COMM_WORLD)

// Ring all-reduce volume, the figure the bytes are compared against.
static void count_allreduce(KilnComm *c, double bytes) {
    stats_of(c)->bytes += 2.0 * (c->size - 1) / c->size * bytes;
}

int comm_init(KilnComm *c, KilnErr *err) {
    memset(c, 0, sizeof *c);
    c->size = 1;
    if (!launcher_size()) return 0;
    int provided;
    // OpenMP threads compute; only the main thread talks
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return kiln_fail(err, "MPI_Init failed under the launcher");
    c->mpi = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    return 0;
}

void comm_finalize(KilnComm *c) {
    watchdog_stop(c);
    if (!c->mpi) return;
    comm_wait_all(c);
    free(c->reqs);
    c->reqs = NULL;
    c->nreq = c->reqcap = 0;
    MPI_Finalize();
    c->mpi = 0;
}

// MPI counts are ints: long buffers go in slices.
#define SLICE (1L << 28)

void comm_allreduce_sum_f64(KilnComm *c, double *x, int n) {
    if (c->size == 1) return;
    double t0 = busy(c, "an all-reduce");
    MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, MCOMM(c));
    idle(c, t0);
}

void comm_allreduce_max_int(KilnComm *c, int *x, int n) {
    if (c->size == 1) return;
    double t0 = busy(c, "an all-reduce");
    MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_INT, MPI_MAX, MCOMM(c));
    idle(c, t0);
}

void comm_allreduce_f32(KilnComm *c, float *x, long n, int max) {
    if (c->size == 1 || n == 0) return;
    double t0 = busy(c, "a tensor-parallel all-reduce");
    for (long i = 0; i < n; i += SLICE)
        MPI_Allreduce(MPI_IN_PLACE, x + i, (int)(n - i < SLICE ? n - i : SLICE), MPI_FLOAT, max ? MPI_MAX : MPI_SUM,
                      MCOMM(c));
    count_allreduce(c, 4.0 * n);
    idle(c, t0);
}

int comm_split(KilnComm *world, int color, int key, KilnComm *group, KilnErr *err) {
    memset(group, 0, sizeof *group);
    group->world = world;
    group->size = 1;
    if (world->size == 1) return 0;
    MPI_Comm *h = malloc(sizeof *h);
    if (!h) return kiln_fail(err, "out of memory");
    if (MPI_Comm_split(MCOMM(world), color, key, h) != MPI_SUCCESS) {
        free(h);
        return kiln_fail(err, "MPI_Comm_split failed");
    }
    group->handle = h;
    group->mpi = 1;
    MPI_Comm_rank(*h, &group->rank);
    MPI_Comm_size(*h, &group->size);
    return 0;
}

void comm_group_free(KilnComm *group) {
    if (group->handle) {
        comm_wait_all(group);
        MPI_Comm_free(group->handle);
        free(group->handle);
    }
    free(group->reqs);
    memset(group, 0, sizeof *group);
}

void comm_gather_bytes(KilnComm *c, const void *mine, long bytes, void *all) {
    if (c->size == 1) {
        memcpy(all, mine, (size_t)bytes);
        return;
    }
    double t0 = busy(c, "a gather");
    MPI_Gather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, 0, MCOMM(c));
    idle(c, t0);
}

void comm_bcast(KilnComm *c, void *buf, long bytes, int root) {
    if (c->size == 1) return;
    double t0 = busy(c, "a broadcast");
    for (long i = 0; i < bytes; i += SLICE)
        MPI_Bcast((char *)buf + i, (int)(bytes - i < SLICE ? bytes - i : SLICE), MPI_BYTE, root, MCOMM(c));
    idle(c, t0);
}

// MPI's per-rank counts, then displacements, of the comm_shard pieces of n
// floats (ints: the trainer refuses a ZeRO model whose size does not fit one).
static int *shard_counts(const KilnComm *c, long n) {
    int *counts = malloc(sizeof *counts * 2 * (size_t)c->size);
    if (!counts) MPI_Abort(MPI_COMM_WORLD, 1);  // a few bytes: the job cannot go on
    for (int r = 0; r < c->size; r++) {
        long lo, hi;
        comm_shard(n, c->size, r, &lo, &hi);
        counts[r] = (int)(hi - lo), counts[c->size + r] = (int)lo;
    }
    return counts;
}

void comm_reduce_scatter_f32(KilnComm *c, const float *x, long n, float *out) {
    if (c->size == 1) {
        memcpy(out, x, sizeof *x * (size_t)n);
        return;
    }
    int *counts = shard_counts(c, n);
    double t0 = busy(c, "the gradients' reduce-scatter");
    MPI_Reduce_scatter(x, out, counts, MPI_FLOAT, MPI_SUM, MCOMM(c));
    stats_of(c)->bytes += (c->size - 1.0) / c->size * 4.0 * n;
    idle(c, t0);
    free(counts);
}

// MPI's receive counts for comm_reduce_scatter_range: each rank's part of
// [offset, offset + n) in its comm_shard piece of total; *mine: where this
// rank's part starts.
static int *range_counts(const KilnComm *c, long offset, long n, long total, long *mine) {
    int *counts = malloc(sizeof *counts * (size_t)c->size);
    if (!counts) MPI_Abort(MPI_COMM_WORLD, 1);  // a few bytes: the job cannot go on
    *mine = offset;
    for (int r = 0; r < c->size; r++) {
        long lo, hi;
        comm_shard(total, c->size, r, &lo, &hi);
        long a = lo > offset ? lo : offset, b = hi < offset + n ? hi : offset + n;
        counts[r] = b > a ? (int)(b - a) : 0;
        if (r == c->rank) *mine = a;
    }
    return counts;
}

long comm_reduce_scatter_range(KilnComm *c, const float *x, long offset, long n, long total, float *out) {
    if (c->size == 1) {
        memcpy(out, x, sizeof *x * (size_t)n);
        return offset;
    }
    long mine;
    int *counts = range_counts(c, offset, n, total, &mine);
    double t0 = busy(c, "the gradients' reduce-scatter");
    MPI_Reduce_scatter(x, out, counts, MPI_FLOAT, MPI_SUM, MCOMM(c));
    stats_of(c)->bytes += (c->size - 1.0) / c->size * 4.0 * n;
    idle(c, t0);
    free(counts);
    return mine;
}


void comm_allgather_f32(KilnComm *c, float *x, long n) {
    if (c->size == 1) return;
    int *counts = shard_counts(c, n);
    double t0 = busy(c, "the weights' all-gather");
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, counts, counts + c->size, MPI_FLOAT, MCOMM(c));
    stats_of(c)->bytes += (c->size - 1.0) / c->size * 4.0 * n;
    idle(c, t0);
    free(counts);
}

void comm_gather_f32(KilnComm *c, const float *mine, long n, float *all) {
    if (c->size == 1) {
        memcpy(all, mine, sizeof *all * (size_t)n);
        return;
    }
    int *counts = shard_counts(c, n);
    double t0 = busy(c, "a checkpoint's gather");
    MPI_Gatherv(mine, counts[c->rank], MPI_FLOAT, all, counts, counts + c->size, MPI_FLOAT, 0, MCOMM(c));
    idle(c, t0);
    free(counts);
}

void comm_scatter_f32(KilnComm *c, const float *all, long n, float *mine) {
    if (c->size == 1) {
        memcpy(mine, all, sizeof *all * (size_t)n);
        return;
    }
    int *counts = shard_counts(c, n);
    double t0 = busy(c, "a checkpoint's scatter");
    MPI_Scatterv(all, counts, counts + c->size, MPI_FLOAT, mine, counts[c->rank], MPI_FLOAT, 0, MCOMM(c));
    idle(c, t0);
    free(counts);
}

void comm_send(KilnComm *c, const void *buf, long bytes, int dest, int tag) {
    double t0 = busy(c, "a send");
    long i = 0;
    do {  // at least one message, so that an empty one is still a signal
        long k = bytes - i < SLICE ? bytes - i : SLICE;
        MPI_Send((const char *)buf + i, (int)k, MPI_BYTE, dest, tag, MCOMM(c));
        i += k;
    } while (i < bytes);
    idle(c, t0);
}

void comm_isend(KilnComm *c, const void *buf, long bytes, int dest, int tag, KilnReq *req) {
    int n = (int)((bytes + SLICE - 1) / SLICE);
    if (n < 1) n = 1;  // an empty message is still one
    MPI_Request *rq = malloc(sizeof *rq * (size_t)n);
    if (!rq) MPI_Abort(MPI_COMM_WORLD, 1);  // a few bytes: the job cannot go on
    for (int i = 0; i < n; i++) {
        long at = (long)i * SLICE, k = bytes - at < SLICE ? bytes - at : SLICE;
        MPI_Isend((const char *)buf + at, (int)(k > 0 ? k : 0), MPI_BYTE, dest, tag, MCOMM(c), rq + i);
    }
    req->reqs = rq, req->n = n;
    stats_of(c)->bytes += (double)bytes;
}

void comm_wait(KilnComm *c, KilnReq *req) {
    if (!req->n) return;
    double t0 = busy(c, "a send to the next or previous pipeline stage");
    MPI_Waitall(req->n, req->reqs, MPI_STATUSES_IGNORE);
    idle(c, t0);
    free(req->reqs);
    req->reqs = NULL, req->n = 0;
}

int comm_recv(KilnComm *c, void *buf, long bytes, int src, int *tag) {
    double t0 = busy(c, "a receive");
    MPI_Status stt;
    long k = bytes < SLICE ? bytes : SLICE;
    MPI_Recv(buf, (int)k, MPI_BYTE, src < 0 ? MPI_ANY_SOURCE : src, *tag < 0 ? MPI_ANY_TAG : *tag, MCOMM(c),
             &stt);
    // the rest of a long message from the same sender, in order
    for (long i = k; i < bytes; i += SLICE)
        MPI_Recv((char *)buf + i, (int)(bytes - i < SLICE ? bytes - i : SLICE), MPI_BYTE, stt.MPI_SOURCE,
                 stt.MPI_TAG, MCOMM(c), MPI_STATUS_IGNORE);
    *tag = stt.MPI_TAG;
    idle(c, t0);
    return stt.MPI_SOURCE;
}

void comm_iallreduce_sum_f32(KilnComm *c, float *x, long n) {
    if (c->size == 1 || n == 0) return;
    double t0 = now_s();
    for (long i = 0; i < n; i += SLICE) {
        if (c->nreq == c->reqcap) {
            int cap = c->reqcap ? 2 * c->reqcap : 64;
            MPI_Request *grown = realloc(c->reqs, sizeof *grown * (size_t)cap);
            if (!grown) {  // no room to keep it in flight: do it now
                MPI_Allreduce(MPI_IN_PLACE, x + i, (int)(n - i < SLICE ? n - i : SLICE), MPI_FLOAT, MPI_SUM,
                              MCOMM(c));
                continue;
            }
            c->reqs = grown, c->reqcap = cap;
        }
        MPI_Iallreduce(MPI_IN_PLACE, x + i, (int)(n - i < SLICE ? n - i : SLICE), MPI_FLOAT, MPI_SUM,
                       MCOMM(c), (MPI_Request *)c->reqs + c->nreq++);
    }
    count_allreduce(c, 4.0 * n);
    stats_of(c)->wait_s += now_s() - t0;
}

void comm_library(char *out, int cap) {
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int n;
    MPI_Get_library_version(v, &n);  // one of the few calls allowed before MPI_Init
    v[strcspn(v, ",\n")] = 0;
    snprintf(out, (size_t)cap, "%s", v);
}

void comm_progress(KilnComm *c) {
    if (c->size == 1 || !c->nreq) return;
    double t0 = now_s();
    int done;
    MPI_Testall(c->nreq, c->reqs, &done, MPI_STATUSES_IGNORE);
    if (done) c->nreq = 0;
    stats_of(c)->wait_s += now_s() - t0;
}

void comm_wait_all(KilnComm *c) {
    if (c->size == 1 || !c->nreq) return;
    double t0 = busy(c, "the gradients' all-reduce");
    MPI_Waitall(c->nreq, c->reqs, MPI_STATUSES_IGNORE);
    c->nreq = 0;
    idle(c, t0);
}

#else  // built without MPI: one rank

int comm_init(KilnComm *c, KilnErr *err) {
    memset(c, 0, sizeof *c);
    c->size = 1;
    int n = launcher_size();
    if (n > 1)
        return kiln_fail(err, "started by an MPI launcher for %d ranks, but this kiln was built without MPI "
                              "(install libopenmpi-dev with scripts/install-deps.sh and rebuild)", n);
    return 0;
}
void comm_finalize(KilnComm *c) { watchdog_stop(c); }
void comm_library(char *out, int cap) { snprintf(out, (size_t)cap, "none (built without MPI)"); }
void comm_allreduce_sum_f64(KilnComm *c, double *x, int n) { (void)c, (void)x, (void)n; }
void comm_allreduce_max_int(KilnComm *c, int *x, int n) { (void)c, (void)x, (void)n; }
void comm_bcast(KilnComm *c, void *buf, long bytes, int root) { (void)c, (void)buf, (void)bytes, (void)root; }
void comm_gather_bytes(KilnComm *c, const void *mine, long bytes, void *all) {
    (void)c;
    memcpy(all, mine, (size_t)bytes);
}
void comm_allreduce_f32(KilnComm *c, float *x, long n, int max) { (void)c, (void)x, (void)n, (void)max; }
int comm_split(KilnComm *world, int color, int key, KilnComm *group, KilnErr *err) {
    (void)color, (void)key, (void)err;
    memset(group, 0, sizeof *group);
    group->world = world;
    group->size = 1;
    return 0;
}
void comm_group_free(KilnComm *group) { memset(group, 0, sizeof *group); }
void comm_iallreduce_sum_f32(KilnComm *c, float *x, long n) { (void)c, (void)x, (void)n; }
void comm_reduce_scatter_f32(KilnComm *c, const float *x, long n, float *out) {
    (void)c;
    memcpy(out, x, sizeof *x * (size_t)n);
}
void comm_allgather_f32(KilnComm *c, float *x, long n) { (void)c, (void)x, (void)n; }
long comm_reduce_scatter_range(KilnComm *c, const float *x, long offset, long n, long total, float *out) {
    (void)c, (void)total;
    memcpy(out, x, sizeof *x * (size_t)n);
    return offset;
}
void comm_send(KilnComm *c, const void *buf, long bytes, int dest, int tag) {
    (void)c, (void)buf, (void)bytes, (void)dest, (void)tag;
}
void comm_isend(KilnComm *c, const void *buf, long bytes, int dest, int tag, KilnReq *req) {
    (void)c, (void)buf, (void)bytes, (void)dest, (void)tag, (void)req;
}
void comm_wait(KilnComm *c, KilnReq *req) { (void)c, (void)req; }
int comm_recv(KilnComm *c, void *buf, long bytes, int src, int *tag) {
    (void)c, (void)buf, (void)bytes, (void)src, (void)tag;
    return -1;  // one rank: nobody to hear from (the trainer never asks)
}
void comm_gather_f32(KilnComm *c, const float *mine, long n, float *all) {
    (void)c;
    memcpy(all, mine, sizeof *all * (size_t)n);
}
void comm_scatter_f32(KilnComm *c, const float *all, long n, float *mine) {
    (void)c;
    memcpy(mine, all, sizeof *all * (size_t)n);
}
void comm_progress(KilnComm *c) { (void)c; }
void comm_wait_all(KilnComm *c) { (void)c; }

#endif

void comm_shard(long n, int size, int rank, long *lo, long *hi) {
    long per = (n + size - 1) / size;
    per = (per + 15) & ~15L;  // 64-byte pieces
    *lo = rank * per < n ? rank * per : n;
    *hi = *lo + per < n ? *lo + per : n;
}

void comm_take_stats(KilnComm *c, double *wait_s, double *bytes) {
    *wait_s = c->wait_s;
    *bytes = c->bytes;
    c->wait_s = c->bytes = 0;
}
