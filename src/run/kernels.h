// kernels.h: the libraries a training run's matmuls run on (kernels.c).
#ifndef KILN_RUN_KERNELS_H
#define KILN_RUN_KERNELS_H

#include "dist/comm.h"
#include "kiln/config.h"
#include "kiln/model.h"

#include <stddef.h>

// What runs a run's matmuls, and why.
typedef struct {
    int sgemm_resumed, bf16_resumed;  // auto took the resumed checkpoint's choice (set by the caller)
    char sgemm[640], bf16[320];       // what runs the products, and why
} KilnKernelNotes;

// The libraries of a training run's matmuls, chosen once at its start (after
// a resume has put its checkpoint's choices into cfg): train.sgemm, then for
// train.precision bf16 train.bf16_kernels, racing the sgemm chosen. auto's
// decisions are rank 0's, broadcast to every rank, and written into cfg,
// which the checkpoints record, so a resume keeps them. -1 with err set when
// a library named is not in this build or CPU.
int kernels_choose(KilnModel *m, KilnConfig *cfg, KilnComm *comm, KilnKernelNotes *kn, KilnErr *err);

// train.sgemm auto for model m at N rows per micro-batch: this machine's
// verdict for these shapes from the cache, or a race of OpenBLAS's and
// oneDNN's sgemm per product class (kept in the cache for later runs). Sets
// cfg->train.sgemm to the verdict and says where it came from in note.
void kernels_sgemm_auto(const KilnModel *m, int N, KilnConfig *cfg, char *note, size_t cap);
// Where the verdicts are kept: KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln,
// else ~/.cache/kiln; 0 when none of them is set.
int kernels_cache_dir(char *out, size_t cap);

#endif
