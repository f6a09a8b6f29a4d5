// kernels.h: the libraries a training run's matmuls run on (kernels.c).
#ifndef KILN_RUN_KERNELS_H
#define KILN_RUN_KERNELS_H

#include "kiln/config.h"
#include "kiln/model.h"

#include <stddef.h>

// train.sgemm auto for model m at N rows per micro-batch: this machine's
// verdict for these shapes from the cache, or a race of OpenBLAS's and
// oneDNN's sgemm per product class (kept in the cache for later runs). Sets
// cfg->train.sgemm to the verdict and says where it came from in note.
int kernels_sgemm_auto(const KilnModel *m, int N, KilnConfig *cfg, char *note, size_t cap);
// Where the verdicts are kept: KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln,
// else ~/.cache/kiln; 0 when none of them is set.
int kernels_cache_dir(char *out, size_t cap);

#endif
