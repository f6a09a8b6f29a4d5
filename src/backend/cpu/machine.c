// machine.c: what the CPU backend runs on: its sgemm peak (for MFU), the
// OpenBLAS build behind every matmul (for env.json), and the CPUs it may use.
#define _GNU_SOURCE  // sched_getaffinity, CPU_COUNT
#include "backend/backend.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

// The tightest cpu.max quota (in CPUs) on this process's cgroup v2 path, from
// its own group up to the root; 0 when none is set. A container sees its own
// group as "/", so the walk is short there.
double backend_cgroup_quota(const char *proc_cgroup, const char *root) {
    FILE *f = fopen(proc_cgroup, "r");
    if (!f) return 0;
    char line[1024], rel[1024] = "";
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "0::", 3)) {
            snprintf(rel, sizeof rel, "%s", line + 3);
            rel[strcspn(rel, "\n")] = 0;
        }
    fclose(f);
    double best = 0;
    for (;;) {
        char path[1200];
        snprintf(path, sizeof path, "%s%s/cpu.max", root, rel);
        FILE *q = fopen(path, "r");
        if (q) {
            char max[32] = "";
            long period = 0;
            if (fscanf(q, "%31s %ld", max, &period) == 2 && strcmp(max, "max") && period > 0) {
                double cpus = atof(max) / (double)period;
                if (cpus > 0 && (best == 0 || cpus < best)) best = cpus;
            }
            fclose(q);
        }
        char *slash = strrchr(rel, '/');
        if (!slash) break;
        *slash = 0;  // the parent ("" is the root)
    }
    return best;
}

void backend_thread_plan(KilnThreadPlan *p) {
    memset(p, 0, sizeof *p);
    p->online = (int)sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    p->affinity = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : p->online;
    if (p->affinity < 1) p->affinity = 1;
    p->quota = backend_cgroup_quota("/proc/self/cgroup", "/sys/fs/cgroup");
    const char *n = getenv("OMP_NUM_THREADS");
    if (n && *n) {
        p->threads = omp_get_max_threads();
        snprintf(p->threads_why, sizeof p->threads_why, "OMP_NUM_THREADS=%s in the environment", n);
    } else if (p->quota > 0 && ceil(p->quota) < p->affinity) {
        p->threads = (int)ceil(p->quota);
        snprintf(p->threads_why, sizeof p->threads_why,
                 "the cgroup's cpu.max quota allows %.2f CPUs (%d in the affinity mask, %d online)", p->quota,
                 p->affinity, p->online);
    } else {
        p->threads = p->affinity;
        snprintf(p->threads_why, sizeof p->threads_why, "%d CPUs in this process's affinity mask (%d online%s)",
                 p->affinity, p->online, p->quota > 0 ? ", cgroup quota no lower" : ", no cgroup quota");
    }
    const char *wp = getenv("OMP_WAIT_POLICY"), *sc = getenv("GOMP_SPINCOUNT"), *mine = getenv(KILN_SPINCOUNT_ENV);
    snprintf(p->wait_policy, sizeof p->wait_policy, "%s", wp ? wp : "");
    snprintf(p->spincount, sizeof p->spincount, "%s", sc ? sc : "");
    if (mine && sc && !wp)
        snprintf(p->wait_why, sizeof p->wait_why,
                 "set by kiln (neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT was set): a waiting thread spins about "
                 "0.1 ms, then sleeps, so other busy processes do not make every barrier cost a time slice");
    else if (wp || sc)
        snprintf(p->wait_why, sizeof p->wait_why, "set in the environment%s%s%s%s", wp ? " OMP_WAIT_POLICY=" : "",
                 wp ? wp : "", sc ? " GOMP_SPINCOUNT=" : "", sc ? sc : "");
    else
        snprintf(p->wait_why, sizeof p->wait_why,
                 "libgomp's default (spin about 3 ms, then sleep): kiln could not run itself again with "
                 "GOMP_SPINCOUNT set");
}

void backend_threads_apply(const KilnThreadPlan *p) {
    if (p->threads >= 1 && p->threads != omp_get_max_threads()) omp_set_num_threads(p->threads);
}
