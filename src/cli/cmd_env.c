// cmd_env.c: `kiln env`: what kiln runs on, and the thread count and OpenMP
// wait policy it chose, with the reason for each.
#include "backend/backend.h"
#include "cli/cli.h"
#include "dist/comm.h"
#include "run/kernels.h"

#include "kiln/core.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

static int run(int argc, char **argv) {
    if (argc > 1) return cli_error("env: unexpected argument '%s' (see `kiln help env`)", argv[1]), 2;
    KilnThreadPlan p;
    backend_thread_plan(&p);
    KilnBackendInfo be = backend_info();
    printf("kiln %s (commit %s)\n", kiln_version(), kiln_git_commit());
    printf("cpus:        %d online, %d in the affinity mask, cgroup quota ", p.online, p.affinity);
    if (p.quota > 0) printf("%.2f\n", p.quota);
    else printf("none\n");
    printf("threads:     %d (%s)\n", p.threads, p.threads_why);
    printf("wait policy: OMP_WAIT_POLICY=%s GOMP_SPINCOUNT=%s (%s)\n", p.wait_policy[0] ? p.wait_policy : "unset",
           p.spincount[0] ? p.spincount : "unset", p.wait_why);
    KilnCpuIsa isa;
    backend_cpu_isa(&isa);
    char model[256], names[256];
    if (!backend_cpu_model(model, sizeof model)) snprintf(model, sizeof model, "unknown");
    backend_isa_names(&isa, names, sizeof names);
    printf("cpu:         %s; %s\n", model, names);
    printf("backend:     %s", be.name);
    if (be.blas) printf(", %s %s, %d threads (the same OpenMP pool)", be.blas, be.blas_config, be.blas_threads);
    printf("\n");
    if (be.blas) printf("kernels:     %s (%s)\n", be.blas_core, be.blas_core_why);
    KilnPeak pk;
    backend_peak(&pk, 2048);
    printf("fp32 peak:   %.1f GFLOP/s theoretical (%d cores x %.2f GHz from %s x %d FLOP/cycle: %s); "
           "sgemm 2048^3 measured %.1f GFLOP/s (%.0f%%); MFU uses the %s one\n",
           pk.theoretical / 1e9, pk.cores, pk.ghz, pk.clock_from[0] ? pk.clock_from : "nowhere", pk.flops_per_cycle,
           pk.per_cycle_why, pk.measured / 1e9, pk.theoretical > 0 ? 100 * pk.measured / pk.theoretical : 0.0,
           pk.peak_is);
    char dir[1024];
    int verdicts = 0;
    if (kernels_cache_dir(dir, sizeof dir)) {
        DIR *d = opendir(dir);
        for (struct dirent *de; d && (de = readdir(d));) verdicts += !strncmp(de->d_name, "sgemm-", 6) && !strstr(de->d_name, ".tmp");
        if (d) closedir(d);
    }
    if (backend_onednn_version())
        printf("sgemm:       OpenBLAS's or oneDNN's per product class of the linear layers, raced once per machine and "
               "model shape at a run's start (train.sgemm auto); %d verdict%s kept in %s\n", verdicts,
               verdicts == 1 ? "" : "s", kernels_cache_dir(dir, sizeof dir) ? dir : "(nowhere: no HOME)");
    else
        printf("sgemm:       OpenBLAS's (this build has no oneDNN)\n");
    KilnErr e;
    KilnBf16Gemm *bk = bf16_gemm_open(&e);
    if (!bk) {
        printf("bf16 peak:   the fp32 peak: bf16 matmuls run on the fp32 sgemm with bf16-rounded operands (no bf16 "
               "kernels: %s)\n", e.msg);
    } else {
        KilnPeak bp = pk;
        bf16_gemm_peak(bk, &bp, 2048);
        printf("bf16 peak:   %.1f GFLOP/s theoretical (%d FLOP/cycle: %s); oneDNN's bf16 matmul (%s) 2048^3 "
               "measured %.1f GFLOP/s (%.0f%%), %.2fx the sgemm's; train.bf16_kernels auto races the two at start\n",
               bp.theoretical / 1e9, bp.flops_per_cycle, bp.per_cycle_why, bf16_gemm_impl(bk), bp.measured / 1e9,
               bp.theoretical > 0 ? 100 * bp.measured / bp.theoretical : 0.0, pk.measured > 0 ? bp.measured / pk.measured : 0.0);
        bf16_gemm_close(bk);
    }
    char mpi[256];
    comm_library(mpi, sizeof mpi);
    printf("mpi:         %s\n", mpi);
    return 0;
}

const KilnCommand CMD_ENV = {
    "env", run, "show the CPUs, threads, OpenMP wait policy and BLAS kernels kiln uses, and why",
    "usage: kiln env\n"
    "\n"
    "Prints the CPUs this process may use (online, affinity mask, cgroup cpu.max\n"
    "quota), the thread count kiln chose and why (OMP_NUM_THREADS when set, else\n"
    "the affinity mask capped by the quota; train.threads and eval --threads\n"
    "override it per command), and the OpenMP wait policy: unless OMP_WAIT_POLICY\n"
    "or GOMP_SPINCOUNT is set, kiln sets GOMP_SPINCOUNT=" KILN_SPINCOUNT " so that a\n"
    "thread waiting at a barrier spins briefly, then sleeps; libgomp's default spin\n"
    "of about 3 ms makes kiln many times slower when other processes keep the cores\n"
    "busy. Then the CPU's instruction sets and the BLAS kernels in use, with who\n"
    "chose them: where OpenBLAS fell back to its generic SSE kernels on a CPU with\n"
    "AVX2 or AVX-512, kiln sets OPENBLAS_CORETYPE (docs/pretrain.md, Threads and kernels).\n"
    "Then which sgemm runs the linear layers' products (train.sgemm auto: raced per\n"
    "machine and model shape, the verdicts kept in KILN_CACHE_DIR, else\n"
    "$XDG_CACHE_HOME/kiln, else ~/.cache/kiln). Last the peaks MFU is measured\n"
    "against: fp32's theoretical and measured, and\n"
    "bf16's (train.precision: bf16) with oneDNN's bf16 kernels where this build and\n"
    "CPU have them (docs/pretrain.md, Precision),\n"
    "and the MPI library `mpirun -np N kiln pretrain` uses (docs/cluster.md).\n"
    "See docs/benchmarks.md.\n",
    0,
};
