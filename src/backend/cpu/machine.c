// machine.c: what the CPU backend runs on: its sgemm peak (for MFU), the
// OpenBLAS build behind every matmul (for env.json), and the CPUs it may use.
#define _GNU_SOURCE  // sched_getaffinity, CPU_COUNT
#include "backend/backend.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Best of at least five (n,n) @ (n,n) products, timed for about a second;
// the first call warms the threads up. Smaller products than 2048 do not
// reach the peak.
double backend_peak_flops(int n) {
    long N = n;
    float *a = malloc(sizeof(float) * N * N * 3);
    if (!a) return 0;
    for (long i = 0; i < N * N * 3; i++) a[i] = (float)(i % 7) * 0.1f;
    double best = 0, t_end = kiln_now() + 1.0, flops = 2.0 * N * N * N;
    for (int calls = 0; calls < 5 || kiln_now() < t_end; calls++) {
        double t0 = kiln_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, a + N * N, n, 0.0f,
                    a + 2 * N * N, n);
        double dt = kiln_now() - t0;
        if (dt > 0 && flops / dt > best) best = flops / dt;
    }
    free(a);
    return best;
}

// fp32 FLOPs per cycle of one core running OpenBLAS's kernels for core: FMA
// units x vector floats x 2. (Some Xeon Silver and Bronze parts have one
// AVX-512 FMA unit, not two: the measurement then stays below the figure.)
static int flops_per_cycle(const char *core, char *why, size_t cap) {
    static const struct { const char *core; int flops; const char *why; } t[] = {
        {"SkylakeX", 64, "AVX-512: 2 FMA units x 16 floats x 2"},
        {"Cooperlake", 64, "AVX-512: 2 FMA units x 16 floats x 2"},
        {"SapphireRapids", 64, "AVX-512: 2 FMA units x 16 floats x 2"},
        {"Haswell", 32, "AVX2: 2 FMA units x 8 floats x 2"},
        {"Zen", 32, "AVX2: 2 FMA units x 8 floats x 2"},
        {"Sandybridge", 16, "AVX: 1 add + 1 multiply unit x 8 floats"},
        {"Prescott", 8, "SSE: 1 add + 1 multiply unit x 4 floats"},
    };
    for (size_t i = 0; core && i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(core, t[i].core)) {
            snprintf(why, cap, "%s (%s kernels)", t[i].why, core);
            return t[i].flops;
        }
    snprintf(why, cap, "unknown for %s kernels", core ? core : "these");
    return 0;
}

// The highest clock the kernel reports: cpufreq's maximum (boost included)
// where the machine exposes it, else /proc/cpuinfo's "cpu MHz" (a VM's base clock).
static double clock_ghz(char *from, size_t cap) {
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "r");
    double khz = 0, mhz = 0;
    if (f) {
        if (fscanf(f, "%lf", &khz) == 1 && khz > 0) snprintf(from, cap, "cpufreq cpuinfo_max_freq");
        fclose(f);
        if (khz > 0) return khz / 1e6;
    }
    if (!(f = fopen("/proc/cpuinfo", "r"))) return 0;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "cpu MHz", 7) && sscanf(strchr(line, ':') ? strchr(line, ':') + 1 : "", "%lf", &mhz) == 1)
            break;
    fclose(f);
    if (mhz > 0) snprintf(from, cap, "/proc/cpuinfo cpu MHz");
    return mhz / 1e3;
}

// Cores per logical CPU from /proc/cpuinfo ("cpu cores" over "siblings"):
// 0.5 with two hyperthreads per core, which share its FMA units; 1 when unknown.
static double cores_per_cpu(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return 1;
    char line[256];
    int siblings = 0, cores = 0;
    while ((!siblings || !cores) && fgets(line, sizeof line, f)) {
        const char *v = strchr(line, ':');
        if (!v) continue;
        if (!strncmp(line, "siblings", 8)) siblings = atoi(v + 1);
        else if (!strncmp(line, "cpu cores", 9)) cores = atoi(v + 1);
    }
    fclose(f);
    return siblings > 0 && cores > 0 && cores < siblings ? (double)cores / siblings : 1;
}

void backend_peak(KilnPeak *p, int n) {
    memset(p, 0, sizeof *p);
    p->threads = omp_get_max_threads();
    p->cores = (int)ceil(p->threads * cores_per_cpu());
    p->ghz = clock_ghz(p->clock_from, sizeof p->clock_from);
    p->flops_per_cycle = flops_per_cycle(openblas_get_corename(), p->per_cycle_why, sizeof p->per_cycle_why);
    p->theoretical = p->cores * p->ghz * 1e9 * p->flops_per_cycle;
    p->measured = n > 0 ? backend_peak_flops(n) : 0;
    p->peak_is = p->measured > p->theoretical ? "measured" : "theoretical";
    p->peak = p->measured > p->theoretical ? p->measured : p->theoretical;
}

KilnBackendInfo backend_info(void) {
    KilnBackendInfo b = {.name = "cpu", .blas = "openblas", .blas_config = openblas_get_config(),
                         .blas_core = openblas_get_corename(), .blas_threads = openblas_get_num_threads()};
    const char *forced = getenv("OPENBLAS_CORETYPE"), *picked = getenv(KILN_CORETYPE_ENV);
    if (forced && picked)
        snprintf(b.blas_core_why, sizeof b.blas_core_why,
                 "set by kiln: OpenBLAS picked its generic %s kernels for this CPU; set OPENBLAS_CORETYPE to choose",
                 picked);
    else if (forced)
        snprintf(b.blas_core_why, sizeof b.blas_core_why, "OPENBLAS_CORETYPE=%s in the environment", forced);
    else
        snprintf(b.blas_core_why, sizeof b.blas_core_why, "picked by OpenBLAS for this CPU");
    return b;
}

char *backend_cpu_model(char *out, size_t n) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return NULL;
    char line[512];
    char *found = NULL;
    while (!found && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon || strncmp(line, "model name", 10)) continue;
        colon += 1 + (colon[1] == ' ');
        colon[strcspn(colon, "\n")] = 0;
        snprintf(out, n, "%s", colon);
        found = out;
    }
    fclose(f);
    return found;
}

void backend_cpu_isa(KilnCpuIsa *isa) {
    // libgcc's cpuid check includes the OS's support (XGETBV) for the wider registers
    __builtin_cpu_init();
    *isa = (KilnCpuIsa){
        .avx = __builtin_cpu_supports("avx") > 0,
        .avx2 = __builtin_cpu_supports("avx2") > 0,
        .fma = __builtin_cpu_supports("fma") > 0,
        .avx512f = __builtin_cpu_supports("avx512f") > 0,
        .avx512bw = __builtin_cpu_supports("avx512bw") > 0,
        .avx512dq = __builtin_cpu_supports("avx512dq") > 0,
        .avx512vl = __builtin_cpu_supports("avx512vl") > 0,
        .avx512_bf16 = __builtin_cpu_supports("avx512bf16") > 0,
    };
}

void backend_isa_names(const KilnCpuIsa *isa, char *out, size_t cap) {
    const struct { int on; const char *name; } f[] = {
        {isa->avx, "avx"},           {isa->avx2, "avx2"},         {isa->fma, "fma"},
        {isa->avx512f, "avx512f"},   {isa->avx512bw, "avx512bw"}, {isa->avx512dq, "avx512dq"},
        {isa->avx512vl, "avx512vl"}, {isa->avx512_bf16, "avx512_bf16"}};
    size_t len = 0;
    if (cap) out[0] = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].on && len < cap) len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? " " : "", f[i].name);
    if (cap && !out[0]) snprintf(out, cap, "none beyond SSE");
}

const char *backend_blas_better_core(const char *running, const KilnCpuIsa *isa) {
    // OpenBLAS's x86 cores whose sgemm kernels use SSE or AVX1 at most. An
    // AVX2 core (Haswell, Zen) on an AVX-512 CPU is left as it is: OpenBLAS
    // chose it knowing the CPU, and only a measurement could say better. Names
    // not listed (newer cores, or another library's) are never replaced.
    static const char *const old[] = {"Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2",
                                      "Penryn", "Dunnington", "Nehalem", "Athlon", "Opteron", "Opteron(SSE3)",
                                      "Barcelona", "Nano", "Bobcat", "Bulldozer", "Piledriver", "Steamroller",
                                      "Excavator", "Sandybridge"};
    int generic = 0;
    for (size_t i = 0; running && i < sizeof old / sizeof old[0]; i++) generic |= !strcmp(running, old[i]);
    if (!generic) return NULL;
    if (isa->avx512f && isa->avx512bw && isa->avx512dq && isa->avx512vl) return "SkylakeX";
    if (isa->avx2 && isa->fma) return "Haswell";
    return NULL;
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

void backend_threads_apply(const KilnThreadPlan *p) { backend_set_threads(p->threads); }

void backend_set_threads(int n) {
    if (n >= 1 && n != omp_get_max_threads()) omp_set_num_threads(n);
    sigset_t all;
    sigfillset(&all);
#pragma omp parallel
    if (omp_get_thread_num() != 0) pthread_sigmask(SIG_BLOCK, &all, NULL);
}

// libgomp has read its wait policy, and OpenBLAS its kernels, before main
// runs (backend.h says why both matter): when the user set no wait policy, or
// OpenBLAS fell back to generic kernels on a CPU that runs better ones, run
// this binary again with GOMP_SPINCOUNT or OPENBLAS_CORETYPE set, which the
// libraries then read as they load. The pid stays the same. If the exec fails,
// kiln carries on as it is and `kiln env` says so. (/proc/self/exe is the
// emulator under valgrind or qemu-user: set the variables there, and kiln does
// not run itself again.)
void backend_choose_runtime(char **argv) {
    int spin = 0, core_set = 0;
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT"))
        spin = !setenv("GOMP_SPINCOUNT", KILN_SPINCOUNT, 1) && !setenv(KILN_SPINCOUNT_ENV, "1", 1);
    KilnCpuIsa isa;
    backend_cpu_isa(&isa);
    const char *picked = backend_info().blas_core, *core = backend_blas_better_core(picked, &isa);
    if (!getenv("OPENBLAS_CORETYPE") && core)
        core_set = !setenv("OPENBLAS_CORETYPE", core, 1) && !setenv(KILN_CORETYPE_ENV, picked, 1);
    if (!spin && !core_set) return;
    execv("/proc/self/exe", argv);
    if (spin) unsetenv("GOMP_SPINCOUNT"), unsetenv(KILN_SPINCOUNT_ENV);
    if (core_set) unsetenv("OPENBLAS_CORETYPE"), unsetenv(KILN_CORETYPE_ENV);
}
