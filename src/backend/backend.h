// backend.h: the one interface to the machine the model runs on: the model,
// the optimizer, checkpoints and inference do their work on the model's
// floats through these functions. One backend is compiled in, chosen at build time
// (cmake -DKILN_BACKEND=cpu, the default and only one so far: src/backend/cpu/),
// as SQLite picks its OS layer; the CPU backend is the reference that later
// backends are tested against.
//
// The layers of the transformer, each forward beside its backward.
// Shapes use N = B*T rows. Backward functions ADD into parameter gradients
// (so micro-batches accumulate) and WRITE input gradients unless noted.
// Forward loops parallelize only outside a parallel region (if (parallel :
// !omp_in_parallel())): inference runs one sequence per thread inside its caller's.
#ifndef KILN_BACKEND_H
#define KILN_BACKEND_H

#include "kiln/core.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

// ---- embedding: tokens (N) -> out (N,C); wpe may be NULL (RoPE models) ----
// wte holds the vocabulary's rows [lo, lo + rows) (all of it: 0, V); a token
// outside them embeds as zeros and adds to no gradient row.
void embedding_forward(float *out, const int32_t *tokens, const float *wte, long lo, long rows, const float *wpe,
                       int B, int T, int C);
void embedding_backward(float *dwte, long lo, long rows, float *dwpe, const float *dout, const int32_t *tokens,
                        int B, int T, int C);

// ---- the products of a linear layer, and which library runs each ----
// forward out = inp @ w^T (NT), input gradient dout @ w (NN), weight gradient
// dout^T @ inp (TN, accumulating). KilnMatmul says what runs them: bf16
// instructions (bf16_gemm below) when bf16 is set, else per class oneDNN's
// sgemm or OpenBLAS's. A failed bf16 or oneDNN call falls back to OpenBLAS
// (the same products, summed in another order); bf16_gemm_failure says so.
enum { KILN_MM_NT, KILN_MM_NN, KILN_MM_TN, KILN_MM_CLASSES };
typedef struct KilnBf16Gemm KilnBf16Gemm;
typedef struct {
    KilnBf16Gemm *bf16;
    unsigned char onednn[KILN_MM_CLASSES];
} KilnMatmul;
// C (M,N) = op(A) op(B), or += when accumulate; row-major, dense; mm NULL: OpenBLAS.
void mm_product(const KilnMatmul *mm, int cls, int M, int N, int K, const float *A, const float *B, int accumulate,
                float *C);
// The trainer's races: seconds for one class's products over shapes (M,N,K),
// each the best of reps calls, on x's libraries and on y's, the two
// alternating (a failed bf16 call runs on the sgemm: bf16_gemm_failure).
void mm_race(const KilnMatmul *x, const KilnMatmul *y, int cls, const int (*shapes)[3], int n, int reps, double *x_s,
             double *y_s);
// oneDNN's version as major*10000 + minor*100 + patch; 0 when built without it.
int backend_onednn_version(void);
// Every signal blocked on the calling thread around a oneDNN call, and the
// mask restored (matmul.c says why).
void onednn_signals_off(sigset_t *old);
void onednn_signals_on(const sigset_t *old);

// ---- linear: inp (N,IC) @ w^T (OC,IC) + bias (OC) -> out (N,OC); bias may be NULL ----
// mm: the libraries (NULL: OpenBLAS).
void linear_forward(float *out, const float *inp, const float *w, const float *bias, int N, int IC,
                    int OC, const KilnMatmul *mm);
// dinp may be NULL (not needed). dinp is written, dw and dbias accumulate.
void linear_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                     const float *w, int N, int IC, int OC, const KilnMatmul *mm);

// ---- LayerNorm: inp (N,C) -> out (N,C), saves mean, rstd (N); bias may be NULL ----
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                       const float *b, int N, int C, float eps);
// dinp ACCUMULATES (it is the residual stream's gradient).
void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const float *mean, const float *rstd, int N, int C);

// ---- RMSNorm: inp (N,C) -> out (N,C), saves rstd (N) ----
void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                     float eps);
// dinp ACCUMULATES.
void rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                      const float *rstd, int N, int C);

// ---- activations: elementwise inp (N,H) -> out (N,H); SwiGLU: inp (N,2H) = [gate|up] -> out (N,H) ----
void gelu_forward(float *out, const float *inp, long n);
void gelu_backward(float *dinp, const float *inp, const float *dout, long n);
void gelu_erf_forward(float *out, const float *inp, long n);
void gelu_erf_backward(float *dinp, const float *inp, const float *dout, long n);
void relu_forward(float *out, const float *inp, long n);
void relu_backward(float *dinp, const float *inp, const float *dout, long n);
void swiglu_forward(float *out, const float *inp, int N, int H);
void swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int H);

// ---- rotary positions, in place on the q and k heads of qkv (N, (NH+2*NKV)*HD) ----
// cos/sin tables are (block_size, HD/2); position of row (b,t) is t.
void rope_forward(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int NH, int NKV,
                  int HD);
// Rotates gradients back: d(pre-rope) from d(post-rope), in place.
void rope_backward(float *dqkv, const float *cos_t, const float *sin_t, int B, int T, int NH,
                   int NKV, int HD);
void rope_tables(float *cos_t, float *sin_t, int block_size, int HD, float theta);

// ---- dropout masks from a counter-based hash: no mask is stored ----
typedef struct {
    float p;            // drop probability; 0 = off
    uint64_t seed;      // differs per step and per site
    // attention: this call's heads are heads head0.. of heads in the model
    // (tensor parallelism), so that each head's mask is the one-process mask;
    // heads 0: the call has them all
    int head0, heads;
} KilnDropout;
// x (n) *= mask/(1-p), in place; the same call on a gradient applies the same mask.
void dropout_apply(float *x, long n, KilnDropout d);
static inline int dropout_keep(KilnDropout d, uint64_t i);

// ---- causal self-attention, flash-style: one (T,T) score block per head at a time ----
// qkv (B,T,(NH+2*NKV)*HD) -> out (B,T,NH*HD), lse (B,NH,T) saved for backward.
// scratch: per-thread (T*T*3) floats, nthreads blocks. bf16: the probabilities
// (and in backward the score gradients) are rounded to bf16 before their
// matmuls; q, k, v and dout come rounded from the caller.
void attention_forward(float *out, float *lse, const float *qkv, float *scratch, int B, int T,
                       int NH, int NKV, int HD, KilnDropout drop, int bf16);
// dqkv is written (zeroed first).
void attention_backward(float *dqkv, const float *dout, const float *out, const float *qkv,
                        const float *lse, float *scratch, int B, int T, int NH, int NKV, int HD,
                        KilnDropout drop, int bf16);
long attention_scratch_floats(int T, int nthreads);
// Inference over a KV cache: q (n,ldq) query heads of positions pos..pos+n-1,
// kc, vc (pos+n, NKV*HD) cached keys/values of positions 0..pos+n-1 -> out (n,NH*HD).
// scratch: nthreads blocks of n*(pos+n) floats; serial inside a parallel region.
void attention_infer(float *out, const float *q, int ldq, const float *kc, const float *vc,
                     float *scratch, int n, int pos, int NH, int NKV, int HD, int nthreads);

// ---- fused softmax + cross-entropy over logits (N,V) ----
// targets < 0 are ignored. Returns the mean loss over counted targets.
// If dlogits_scale != 0, logits are overwritten IN PLACE with
// dloss/dlogits * dlogits_scale (softmax - onehot) / count.
double crossentropy_forward_backward(float *logits, const int32_t *targets, int N, int V,
                                     float dlogits_scale, long *count);
// The same in three passes over a rank's columns [lo, lo + V) of the
// vocabulary (tensor parallelism); the caller reduces mx (max) and sum (sum)
// over ranks between them, and sums the ranks' shares of the loss.
void crossentropy_shard_max(const float *logits, int N, int V, float *mx);
void crossentropy_shard_sumexp(const float *logits, int N, int V, const float *mx, float *sum);
double crossentropy_shard_finish(float *logits, const int32_t *targets, int N, int V, long lo, const float *mx,
                                 const float *sum, float dlogits_scale, long *count);

// ---- bf16 mixed precision (train.precision: bf16) ----
// Every matmul's two operands are rounded to bf16 and the products summed in
// fp32, as PyTorch's autocast to bfloat16 runs linear and attention; norms,
// softmax, the loss, gradients' sums and the optimizer stay fp32. Rounding is
// to nearest even; values stay in fp32 slots, so fp32 sgemm on rounded
// operands gives exactly the products a bf16 kernel gives (8x8-bit
// significands fit in fp32's 24), summed in fp32.
float bf16_round_value(float x);
void bf16_round(float *x, long n);                           // in place
void bf16_round_copy(float *dst, const float *src, long n);  // dst = bf16(src)
void bf16_pack(uint16_t *dst, const float *src, long n);     // dst = bf16(src)'s 16 bits

// ---- bf16 matmuls in bf16 instructions (train.bf16_kernels) ----
// oneDNN's matmul (AVX512_BF16's vdpbf16ps, or AMX) on operands packed to
// bf16, summed in fp32: the emulation's products, summed in another order.
// Not always faster than the emulation: a CPU with AVX512_BF16 and no AMX
// may issue vdpbf16ps at half the FMA's FLOP rate (measured on an Emerald
// Rapids VM, docs/benchmarks.md), so the trainer races the two (mm_race)
// unless train.bf16_kernels names one.
// NULL with err set when this build has no oneDNN or the CPU no AVX512_BF16.
KilnBf16Gemm *bf16_gemm_open(KilnErr *err);
void bf16_gemm_close(KilnBf16Gemm *g);
// C (M,N) = op(A) op(B), or C += op(A) op(B) when accumulate; row-major and
// dense: A stored (M,K), or (K,M) when ta; B stored (K,N), or (N,K) when tb.
// A and B are rounded to bf16 as they are packed. 0, or -1 with err set.
int bf16_gemm(KilnBf16Gemm *g, int ta, int tb, int M, int N, int K, const float *A, const float *B, int accumulate,
              float *C, KilnErr *err);
// oneDNN's name for the kernel of the latest shape ("brg:avx512_core_bf16").
const char *bf16_gemm_impl(const KilnBf16Gemm *g);
// The first call's failure, or NULL when every call has run.
const char *bf16_gemm_failure(const KilnBf16Gemm *g);

// ---- elementwise ----
void residual_add(float *out, const float *a, const float *b, long n);  // out = a + b

// ---- optimizer updates over one tensor's slice (n) of params p, grads g, state m, v ----
// Each reads the gradient as g*scale + l1*sign(p) + l2*p (scale: the clip
// coefficient; l1, l2, wd are 0 on tensors without decay). train/optim.h has the rules.
typedef struct {
    float *restrict p, *restrict m, *restrict v;
    const float *restrict g;
    long n;
    float scale, l1, l2, wd;
} OptSlice;
// Each returns 1 when every value it wrote is finite, 0 when one overflowed:
// checked in the same pass (x*0 is 0 for a finite x, NaN otherwise), since a
// separate pass over weights and moments would cost as much again in memory.
// torch.optim.AdamW: moments m, v; bias correction by step (from 1); decoupled decay.
int adamw_update(const OptSlice *s, float lr, float beta1, float beta2, float eps, int step);
// torch.optim.SGD, dampening 0: coupled decay; momentum buffer in m.
int sgd_update(const OptSlice *s, float lr, float momentum, int nesterov);
// Lion: decoupled decay; momentum in m.
int lion_update(const OptSlice *s, float lr, float beta1, float beta2);
// sum x^2 in double (the gradient norm's square).
double sum_squares(const float *x, long n);
// *abs_sum += sum |x|, *sq_sum += sum x^2, in double (the penalties' value).
void abs_square_sums(const float *x, long n, double *abs_sum, double *sq_sum);

// ---- memory: parameters, gradients, optimizer state and activations ----
// Zeroed, 64-byte aligned; NULL with err set when out of memory.
float *backend_alloc(long n, KilnErr *err);
void backend_free(float *x);
void backend_zero(float *x, long n);
void backend_copy(float *dst, const float *src, long n);
// bytes from host memory (e.g. the caller's tokens) into backend memory.
void backend_from_host(void *dst, const void *src, size_t bytes);
// Host access to n floats of backend memory, for checkpoints. The CPU
// backend's memory is host memory, so the view is buf itself and nothing is
// copied; a device backend copies to the host here and, if written, back in
// backend_view_end. NULL with err set on failure.
float *backend_view(float *buf, long n, KilnErr *err);
int backend_view_end(float *view, float *buf, long n, int written, KilnErr *err);

// ---- the machine ----
// Best matmul rate (FLOP/s) of an (n,n) @ (n,n) product with the threads in
// use, for MFU; 0 when it cannot be measured. Takes about half a second.
double backend_peak_flops(int n);
// The peak MFU is measured against (issue 13): a stable figure, not a half
// second's measurement on a busy machine. The theoretical peak of the kernels
// in use (cores x clock x fp32 FLOPs per cycle per core) and the best of
// several sgemm measurements; MFU uses the larger, so it never passes 100% (a
// measurement above the theoretical figure means the clock read was a base
// clock below the boost one).
typedef struct {
    double measured;      // FLOP/s: best of several (n,n) @ (n,n) with the threads in use
    double theoretical;   // cores x ghz x flops_per_cycle; 0 when the clock or the kernels are unknown
    int threads;
    int cores;            // the physical cores those threads occupy (hyperthreads share a core's FMA units)
    double ghz;
    int flops_per_cycle;     // fp32, one core, with the kernels in use
    char clock_from[64];     // the file the clock was read from
    char per_cycle_why[96];  // how flops_per_cycle follows from the kernels
    double peak;             // the one MFU uses: max(measured, theoretical)
    const char *peak_is;     // "theoretical" or "measured"
} KilnPeak;
void backend_peak(KilnPeak *p, int n);  // n <= 0: the theoretical figures only
// The bf16 kernels' peak from p's fp32 figures: theoretical twice fp32's
// (vdpbf16ps does two products per lane where an FMA does one, at the FMA's
// rate on CPUs that issue it so), measured the best (n,n) @ (n,n) bf16_gemm.
void bf16_gemm_peak(KilnBf16Gemm *g, KilnPeak *p, int n);
typedef struct {
    const char *name;         // the backend compiled in (KILN_BACKEND)
    const char *blas;         // the BLAS library behind the matmuls, NULL without one
    const char *blas_config;  // its build
    const char *blas_core;    // the kernel set it runs
    char blas_core_why[256];  // who chose it: the library, the user or kiln (and over what)
    int blas_threads;
} KilnBackendInfo;
KilnBackendInfo backend_info(void);

// ---- the BLAS kernels for this CPU ----
// Debian 12's OpenBLAS (0.3.21, DYNAMIC_ARCH) picks its kernels as it loads,
// from the CPU models it knew when it was built: on CPUs newer than that (a
// recent Xeon) it falls back to its Prescott (SSE3) kernels, 4x slower than
// the AVX-512 ones the CPU runs. It reads OPENBLAS_CORETYPE only as it loads,
// so when the user has not set it and the core in use is such a fallback,
// cli/main.c runs kiln again with OPENBLAS_CORETYPE set, marked by
// KILN_CORETYPE_ENV (holding the core the library had picked), as it does for
// GOMP_SPINCOUNT. OpenBLAS does not check a forced core against the CPU, so
// the choice comes from the instruction sets the CPU and the OS support.
#define KILN_CORETYPE_ENV "KILN_CORETYPE_CHOSEN"
typedef struct {
    int avx, avx2, fma, avx512f, avx512bw, avx512dq, avx512vl, avx512_bf16;
} KilnCpuIsa;
// The "model name" line of /proc/cpuinfo (x86), or NULL where there is none.
char *backend_cpu_model(char *out, size_t n);
void backend_cpu_isa(KilnCpuIsa *isa);  // cpuid, with the OS's support of the registers
// Writes the ISA's names, space-separated ("avx2 fma avx512f ...").
void backend_isa_names(const KilnCpuIsa *isa, char *out, size_t cap);
// The OpenBLAS core type to run instead of running (the one the library
// picked) when that is an SSE/AVX1 core: SkylakeX with AVX-512 F/BW/DQ/VL,
// Haswell with AVX2 and FMA; NULL otherwise.
const char *backend_blas_better_core(const char *running, const KilnCpuIsa *isa);

// ---- threads on a shared machine ----
// libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, when it is loaded
// (before main), and its default lets a thread waiting at a barrier spin for
// about 3 ms (300000 spins). With other processes busy on the same cores, the
// spinning threads take the time the thread they wait for needs, and a step
// takes ten times longer. So kiln, when the user has set neither, runs itself
// again with GOMP_SPINCOUNT=KILN_SPINCOUNT (cli/main.c), marked by
// KILN_SPINCOUNT_ENV so that `kiln env` can say who chose it. OpenBLAS (its
// OpenMP build) waits in the same libgomp pool.
#define KILN_SPINCOUNT "10000"
#define KILN_SPINCOUNT_ENV "KILN_SPINCOUNT_CHOSEN"
// Called first in main (the kiln binary's and the benchmarks'): when the user
// set no wait policy, or OpenBLAS fell back to generic kernels on a CPU that
// runs better ones, runs the binary again (same pid) with GOMP_SPINCOUNT or
// OPENBLAS_CORETYPE set; returns when neither is needed or the exec failed.
void backend_choose_runtime(char **argv);
typedef struct {
    int online;        // CPUs online
    int affinity;      // CPUs in this process's affinity mask (what libgomp counts)
    double quota;      // cgroup cpu.max quota in CPUs; 0 when there is none
    int threads;       // the thread count chosen
    char threads_why[200];
    char wait_policy[32];  // OMP_WAIT_POLICY in effect, or "" when unset
    char spincount[32];    // GOMP_SPINCOUNT in effect, or "" when unset
    char wait_why[240];
} KilnThreadPlan;
// Reads the environment and the machine: threads are OMP_NUM_THREADS when set,
// else the CPUs this process may run on (affinity mask, capped by the cgroup's
// cpu.max quota, rounded up). Never the load: results depend on the thread
// count, and a resumed run must reproduce the uninterrupted one.
void backend_thread_plan(KilnThreadPlan *p);
// The tightest cgroup v2 cpu.max quota in CPUs along the group named in
// proc_cgroup ("0::/a/b"), its files under root (/sys/fs/cgroup); 0: none.
double backend_cgroup_quota(const char *proc_cgroup, const char *root);
// Sets the plan's thread count as OpenMP's default (OpenBLAS follows it).
void backend_threads_apply(const KilnThreadPlan *p);
// Sets OpenMP's thread count (n < 1: unchanged) and blocks every signal on
// its worker threads, so that signals reach the thread that runs the program
// (oneDNN's kernels cannot take one: matmul.c). Use it for every change of
// the thread count.
void backend_set_threads(int n);

static inline int dropout_keep(KilnDropout d, uint64_t i) {
    uint64_t h = kiln_hash64(d.seed ^ (i * 0xD1B54A32D192ED03ull));
    return (float)(h >> 40) * 0x1.0p-24f >= d.p;
}

#endif
