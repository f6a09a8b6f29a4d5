// kernels.c: which libraries run a training run's matmuls (issue 13): the
// sgemm of each product class of the linear layers (train.sgemm) and, for
// bf16, oneDNN's bf16 kernels or that sgemm (train.bf16_kernels).
//
// train.sgemm auto: OpenBLAS's and oneDNN's sgemm
// each lead on some CPUs and shapes (docs/benchmarks.md), so auto races them
// on the model's shapes. Two runs that raced apart when the two are close
// would differ in their last bits, so the first verdict on a machine is kept
// in a cache file named for the machine, the libraries and the shapes, made
// once (the first writer wins; a run that raced too takes the file's
// verdict), and every later run on that machine reads it. The verdict is a
// train.sgemm value, read back through the config parser.
#include "run/kernels.h"

#include "backend/backend.h"
#include "dist/comm.h"
#include "kiln/core.h"

#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

int kernels_cache_dir(char *out, size_t cap) {
    const char *d = getenv("KILN_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (d && *d) return snprintf(out, cap, "%s", d) < (int)cap;
    if (x && *x) return snprintf(out, cap, "%s/kiln", x) < (int)cap;
    if (h && *h) return snprintf(out, cap, "%s/.cache/kiln", h) < (int)cap;
    return 0;
}

// The products of one class over the model's linear layers (IC, OC): the L
// blocks' four layers and the head, timed as a step runs them. The head's
// products are the largest (GPT-2's: 20 GFLOP each) and oneDNN's times on
// them vary most from call to call, so each shape gets 5 timed calls.
static void class_race(int cls, const int (*layers)[2], int nblock, int L, int head_ic, int head_oc, int N,
                       double *openblas_s, double *onednn_s) {
    int shapes[8][3];
    for (int i = 0; i <= nblock; i++) {
        int IC = i < nblock ? layers[i][0] : head_ic, OC = i < nblock ? layers[i][1] : head_oc;
        shapes[i][0] = cls == KILN_MM_TN ? OC : N;
        shapes[i][1] = cls == KILN_MM_NT ? OC : IC;
        shapes[i][2] = cls == KILN_MM_NT ? IC : cls == KILN_MM_NN ? OC : N;
    }
    KilnMatmul openblas = {.bf16 = NULL}, onednn = {.bf16 = NULL};
    onednn.onednn[cls] = 1;
    double ob, dn, hob, hdn;
    mm_race(&openblas, &onednn, cls, (const int(*)[3])shapes, nblock, 5, &ob, &dn);
    mm_race(&openblas, &onednn, cls, (const int(*)[3])shapes + nblock, 1, 5, &hob, &hdn);
    *openblas_s = L * ob + hob;
    *onednn_s = L * dn + hdn;
}

static const char *const CLASS[] = {"forward", "input gradient", "weight gradient"};
static const char VERDICT[] = "train.sgemm: ";

// The verdict in path, made for key, into cfg; 0 when there is none.
static int read_verdict(const char *path, const char *key, KilnConfig *cfg) {
    char *text = NULL;
    size_t len = 0;
    if (kiln_read_file(path, &text, &len, NULL)) return 0;
    char *val = strstr(text, VERDICT);
    int ok = 0;
    if (val && strstr(text, key)) {
        val += strlen(VERDICT);
        val[strcspn(val, "\n")] = 0;
        KilnConfig c = *cfg;
        ok = !kiln_config_set(&c, "train.sgemm", val, path, NULL) && c.train.sgemm != KILN_SGEMM_AUTO;
        if (ok) cfg->train.sgemm = c.train.sgemm;
    }
    free(text);
    return ok;
}

void kernels_sgemm_auto(const KilnModel *m, int N, KilnConfig *cfg, char *note, size_t cap) {
    const KilnModelConfig *c = &m->cfg;
    int dnnl_version = backend_onednn_version();
    if (!dnnl_version) {
        cfg->train.sgemm = KILN_SGEMM_OPENBLAS;
        snprintf(note, cap, "OpenBLAS (this build has no oneDNN)");
        return;
    }
    int layers[4][2] = {{c->n_embd, m->QKV}, {m->AD, c->n_embd}, {c->n_embd, m->F}, {m->H, c->n_embd}};
    char key[1024], model[200], isa_names[256];
    KilnCpuIsa isa;
    backend_cpu_isa(&isa);
    backend_isa_names(&isa, isa_names, sizeof isa_names);
    if (!backend_cpu_model(model, sizeof model)) snprintf(model, sizeof model, "unknown");
    snprintf(key, sizeof key, "sgemm v2 | %s | %s | %d threads | OpenBLAS %s | oneDNN %d | N %d | layers %dx%d "
             "%dx%d %dx%d %dx%d x%d | head %dx%d", model, isa_names, omp_get_max_threads(), backend_info().blas_core,
             dnnl_version, N, layers[0][0], layers[0][1], layers[1][0], layers[1][1], layers[2][0], layers[2][1],
             layers[3][0], layers[3][1], c->n_layer, c->n_embd, m->V);
    char dir[900], path[1024], tmp[1100];
    int have_dir = kernels_cache_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/sgemm-%016llx", have_dir ? dir : ".", (unsigned long long)XXH3_64bits(key, strlen(key)));
    if (have_dir && read_verdict(path, key, cfg)) {
        snprintf(note, cap, "this machine's verdict for these shapes (%s)", path);
        return;
    }
    int mask = 0;
    char detail[400] = "";
    for (int cls = 0; cls < KILN_MM_CLASSES; cls++) {
        double ob, dn;
        class_race(cls, (const int(*)[2])layers, 4, c->n_layer, c->n_embd, m->V, N, &ob, &dn);
        if (dn > 0 && dn < ob) mask |= 1 << cls;
        size_t n = strlen(detail);
        snprintf(detail + n, sizeof detail - n, "%s%s %.1f ms on OpenBLAS, %.1f on oneDNN", cls ? "; " : "",
                 CLASS[cls], ob * 1e3, dn * 1e3);
    }
    cfg->train.sgemm = 1 + mask;
    KilnErr e = {0};
    if (!have_dir || kiln_mkdirs(dir, &e)) {
        snprintf(note, cap, "raced (%s; not kept: %s)", detail,
                 have_dir ? e.msg : "no KILN_CACHE_DIR, XDG_CACHE_HOME or HOME");
        return;
    }
    // the first verdict written stays: link() fails where one exists, and that one is taken
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int kept = 0;
    if (f) {
        fprintf(f, "# kiln: which sgemm runs the linear layers' products (forward, input gradient, weight gradient)\n"
                   "# on this machine for these shapes; delete this file to race again\n"
                   "# %s\n# %s\n%s%s\n", detail, key, VERDICT, kiln_config_enum_name("train.sgemm", cfg->train.sgemm));
        if (fclose(f) == 0) {
            if (!link(tmp, path)) kept = 1;
            else if (errno == EEXIST && read_verdict(path, key, cfg)) kept = 2;
        }
        unlink(tmp);
    }
    if (kept == 2) snprintf(note, cap, "this machine's verdict for these shapes, made by another run meanwhile (%s)", path);
    else snprintf(note, cap, "raced (%s), %s %s", detail, kept ? "kept in" : "could not keep it in", path);
}

// train.precision bf16: who runs the linear layers' matmuls. auto races
// oneDNN's bf16 kernels against the fp32 sgemm on bf16-rounded operands on
// the MLP's first matmul, rank 0 deciding for every rank; the choice goes
// into the config the checkpoints record, so that a resume keeps it.
static int choose_bf16(KilnModel *m, KilnConfig *cfg, KilnComm *comm, KilnKernelNotes *kn, KilnErr *err) {
    KilnTrainConfig *t = &cfg->train;
    if (t->precision != KILN_PREC_BF16) return 0;
    const char *set = t->bf16_kernels == KILN_BF16K_AUTO ? NULL : "train.bf16_kernels";
    if (!set) {
        int pick = KILN_BF16K_SGEMM;
        if (comm->rank == 0) {
            KilnErr e = {0};
            if (gpt_bf16_kernels(m, 1, &e)) {
                snprintf(kn->bf16, sizeof kn->bf16, "on the fp32 sgemm with bf16-rounded operands: no bf16 "
                         "kernels here (%s)", e.msg);
            } else {
                int N = m->maxB * m->maxT, F = m->F, C = cfg->model.n_embd, shape[1][3] = {{N, F, C}};
                KilnMatmul bf16 = {.bf16 = m->bk}, sgemm = {.bf16 = NULL};
                memcpy(sgemm.onednn, m->sgemm_onednn, sizeof sgemm.onednn);
                double bs, ss, flops = 2.0 * N * F * C;
                mm_race(&bf16, &sgemm, KILN_MM_NT, (const int(*)[3])shape, 1, 5, &bs, &ss);
                // a bf16 call that failed ran on the sgemm: that is no bf16 kernel
                double bf = bs > 0 && !bf16_gemm_failure(m->bk) ? flops / bs : 0, sg = ss > 0 ? flops / ss : 0;
                pick = bf > sg ? KILN_BF16K_ONEDNN : KILN_BF16K_SGEMM;
                snprintf(kn->bf16, sizeof kn->bf16, "%s, the faster here (train.bf16_kernels auto: on the "
                         "MLP's %d x %d x %d, oneDNN's %s %.1f GFLOP/s, the sgemm %.1f)",
                         pick == KILN_BF16K_ONEDNN ? "in oneDNN's bf16 kernels" :
                         "on the fp32 sgemm with bf16-rounded operands", N, F, C,
                         bf16_gemm_impl(m->bk), bf / 1e9, sg / 1e9);
            }
        }
        comm_bcast(comm, &pick, sizeof pick, 0);
        t->bf16_kernels = pick;
    } else if (kn->bf16_resumed) {
        set = "train.bf16_kernels auto: the resumed run's choice";
    }
    int on = t->bf16_kernels == KILN_BF16K_ONEDNN;
    if (gpt_bf16_kernels(m, on, err))
        return kiln_wrap(err, "%s: onednn", set ? set : "train.bf16_kernels"), -1;
    if (set)
        snprintf(kn->bf16, sizeof kn->bf16, "%s (%s: %s)", on ? "in oneDNN's bf16 kernels" :
                 "on the fp32 sgemm with bf16-rounded operands", set, on ? "onednn" : "sgemm");
    return 0;
}

// train.sgemm: which sgemm runs each product class of the linear layers.
// auto takes a resumed checkpoint's choice, else this machine's verdict for
// the model's shapes (kernels_sgemm_auto), rank 0 deciding for every rank; the
// choice goes into the config the checkpoints record.
static int choose_sgemm(KilnModel *m, KilnConfig *cfg, KilnComm *comm, KilnKernelNotes *kn, KilnErr *err) {
    KilnTrainConfig *t = &cfg->train;
    const char *why = kn->sgemm_resumed ? "the resumed run's choice" : "train.sgemm";
    if (t->sgemm == KILN_SGEMM_AUTO) {
        if (comm->rank == 0)
            kernels_sgemm_auto(m, m->maxB * m->maxT, cfg, kn->sgemm, sizeof kn->sgemm);
        comm_bcast(comm, &t->sgemm, sizeof t->sgemm, 0);
        why = NULL;
    }
    if (gpt_sgemm_libs(m, kiln_sgemm_mask(t->sgemm), err)) return kiln_wrap(err, "%s", why ? why : "train.sgemm"), -1;
    if (why) snprintf(kn->sgemm, sizeof kn->sgemm, "%s", why);
    return 0;
}

int kernels_choose(KilnModel *m, KilnConfig *cfg, KilnComm *comm, KilnKernelNotes *kn, KilnErr *err) {
    return choose_sgemm(m, cfg, comm, kn, err) || choose_bf16(m, cfg, comm, kn, err) ? -1 : 0;  // bf16 races the sgemm chosen
}
