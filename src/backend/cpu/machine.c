// machine.c: what the CPU backend runs on: its sgemm peak (for MFU) and the
// OpenBLAS build behind every matmul (for env.json).
#include "backend/backend.h"

#include <cblas.h>
#include <stdlib.h>

// Best of at least two (n,n) @ (n,n) products, timed for about half a second;
// the first call warms the threads up. Smaller products than 2048 do not
// reach the peak.
double backend_peak_flops(int n) {
    long N = n;
    float *a = malloc(sizeof(float) * N * N * 3);
    if (!a) return 0;
    for (long i = 0; i < N * N * 3; i++) a[i] = (float)(i % 7) * 0.1f;
    double best = 0, t_end = kiln_now() + 0.5, flops = 2.0 * N * N * N;
    for (int calls = 0; calls < 2 || kiln_now() < t_end; calls++) {
        double t0 = kiln_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, a + N * N, n, 0.0f,
                    a + 2 * N * N, n);
        double dt = kiln_now() - t0;
        if (dt > 0 && flops / dt > best) best = flops / dt;
    }
    free(a);
    return best;
}

KilnBackendInfo backend_info(void) {
    KilnBackendInfo b = {"cpu", "openblas", openblas_get_config(), openblas_get_corename(),
                         openblas_get_num_threads()};
    return b;
}
