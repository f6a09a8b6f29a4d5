// comm.h: the ranks of one training job and the collectives between them.
//
// MPI underneath when kiln was built with it (Debian's OpenMPI) and the process
// was started by a launcher (mpirun, srun): a plain `kiln pretrain` is one rank
// and never initialises MPI. Every call is a no-op for one rank, so the trainer
// reads the same either way. A failed collective aborts the whole job (MPI's
// default): a rank cannot go on alone once its peers' state is unknown.
#ifndef KILN_DIST_COMM_H
#define KILN_DIST_COMM_H

#include "kiln/core.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct KilnComm {
    int rank, size;
    int mpi;           // MPI initialised by comm_init (a group: has its own communicator)
    void *handle;      // a group's MPI_Comm (comm_split); NULL: the world
    struct KilnComm *world;  // a group's world, which counts its time and bytes and watches its waits
    double wait_s;     // seconds in collectives since the last comm_take_stats
    double bytes;      // bytes sent by this rank in that time (all-reduce: ring volume, 2(N-1)/N x data)
    void *reqs;        // MPI_Request[reqcap]: the non-blocking collectives in flight
    int nreq, reqcap;
    // the watchdog (comm_watchdog_start): when this rank has waited in one
    // collective longer than timeout_s while alive_path (rank 0's heartbeat)
    // has not changed for as long, a peer died or hangs: the rank ends itself,
    // which makes the launcher end the job, instead of waiting forever
    _Atomic double busy_since;  // start of the collective being waited in; 0 when none
    const char *_Atomic busy_op;
    atomic_int step;            // the caller's step, for the message (read by the watchdog thread)
    double timeout_s;
    char alive_path[1024];
    pthread_t dog;
    int dog_on;
    atomic_int dog_stop;
} KilnComm;

// Joins the job the launcher started, or becomes the only rank. Errors:
// started by a launcher for several ranks but built without MPI.
int comm_init(KilnComm *c, KilnErr *err);
void comm_finalize(KilnComm *c);
// The world's ranks that give the same color, ranked by key (MPI_Comm_split):
// a tensor-parallel or a data-parallel group. Every rank of world calls it.
// The group counts its time and bytes in world's statistics, and the world's
// watchdog watches its waits. comm_group_free before the world's comm_finalize.
int comm_split(KilnComm *world, int color, int key, KilnComm *group, KilnErr *err);
void comm_group_free(KilnComm *group);

// In place, the sum over ranks; every rank gets the same bits.
void comm_allreduce_sum_f64(KilnComm *c, double *x, int n);
void comm_allreduce_max_int(KilnComm *c, int *x, int n);
// In place, the sum (max: 0) or maximum (max: 1) over ranks of n floats.
void comm_allreduce_f32(KilnComm *c, float *x, long n, int max);
// Rank 0 receives into all (size x bytes) every rank's bytes from mine.
void comm_gather_bytes(KilnComm *c, const void *mine, long bytes, void *all);
// root's bytes to every rank.
void comm_bcast(KilnComm *c, void *buf, long bytes, int root);

// ZeRO: rank's share [lo, hi) of a flat buffer of n floats, in 64-byte
// aligned pieces as even as they come (the last ones may be shorter or empty).
void comm_shard(long n, int size, int rank, long *lo, long *hi);
// The sum over ranks of the whole of x (n floats), of which this rank receives
// its comm_shard piece into out.
void comm_reduce_scatter_f32(KilnComm *c, const float *x, long n, float *out);

// A send that goes on while the caller computes (pipeline stages): buf must
// stay as it is until comm_wait(req). A KilnReq starts zeroed; comm_wait on
// one with nothing in flight returns at once.
typedef struct {
    void *reqs;  // MPI_Request[n], one per slice
    int n;
} KilnReq;
void comm_isend(KilnComm *c, const void *buf, long bytes, int dest, int tag, KilnReq *req);
void comm_wait(KilnComm *c, KilnReq *req);

// ZeRO-2: the sum over ranks of x, the floats [offset, offset + n) of a
// buffer of total floats; each rank receives into out the part of them in its
// comm_shard piece of that buffer. Returns where out starts in the buffer.
long comm_reduce_scatter_range(KilnComm *c, const float *x, long offset, long n, long total, float *out);
// Every rank's comm_shard piece of x, from its owner, in place.
void comm_allgather_f32(KilnComm *c, float *x, long n);
// Rank 0 receives into all (n floats) every rank's piece of x; every rank
// passes its own piece in mine. The reverse: rank 0's all out to the pieces.
void comm_gather_f32(KilnComm *c, const float *mine, long n, float *all);
void comm_scatter_f32(KilnComm *c, const float *all, long n, float *mine);

// Point to point (the parameter server of parallel.mode: async). comm_recv
// takes from src (-1: any rank) a message of tag (-1: any), returns the sender
// and sets *tag; the byte counts must match the sender's.
void comm_send(KilnComm *c, const void *buf, long bytes, int dest, int tag);
int comm_recv(KilnComm *c, void *buf, long bytes, int src, int *tag);


// Non-blocking sum in place of a slice: started as soon as its values are
// final, so it runs while the caller computes; comm_wait_all finishes them.
void comm_iallreduce_sum_f32(KilnComm *c, float *x, long n);
void comm_progress(KilnComm *c);  // lets started collectives move on (MPI progresses inside MPI calls)
void comm_wait_all(KilnComm *c);

// Starts the watchdog thread (several ranks only; timeout_s <= 0: none).
// alive_path: a file rank 0 rewrites while it works (its heartbeat), so that a
// long evaluation or checkpoint on rank 0 is not taken for a hang.
int comm_watchdog_start(KilnComm *c, double timeout_s, const char *alive_path, KilnErr *err);

// The MPI library kiln was built with, its first line ("Open MPI v4.1.4, ..."),
// or "none (built without MPI)".
void comm_library(char *out, int cap);

// Time waited and bytes sent since the last call, then zeroed.
void comm_take_stats(KilnComm *c, double *wait_s, double *bytes);

#endif
