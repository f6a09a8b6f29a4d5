// bench_train: times kiln training steps (forward, backward, AdamW) on random tokens
// and the sgemm peak of this machine, and prints one JSON object.
// usage: bench_train B T STEPS [key=value ...]   (config keys as in `kiln help config`)
//        bench_train --sgemm N                    (GFLOP/s of an N x N x N sgemm, backend_peak_flops)
#include "kiln/config.h"
#include "kiln/model.h"
#include "train/optim.h"
#include "backend/backend.h"
#include "run/kernels.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    backend_choose_runtime(argv);  // the OpenBLAS kernels kiln runs on this CPU
    if (argc >= 3 && !strcmp(argv[1], "--sgemm")) {
        printf("{\"sgemm_gflops\": %.2f, \"n\": %d, \"threads\": %d, \"core\": \"%s\"}\n",
               backend_peak_flops(atoi(argv[2])) / 1e9, atoi(argv[2]), omp_get_max_threads(), backend_info().blas_core);
        return 0;
    }
    if (argc < 4) {
        fprintf(stderr, "usage: bench_train B T STEPS [key=value ...] | bench_train --sgemm N\n");
        return 2;
    }
    int B = atoi(argv[1]), T = atoi(argv[2]), steps = atoi(argv[3]);
    KilnConfig cfg;
    KilnErr err;
    kiln_config_defaults(&cfg);
    for (int i = 4; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) return fprintf(stderr, "bad setting %s\n", argv[i]), 2;
        *eq = 0;
        if (kiln_config_set(&cfg, argv[i], eq + 1, "argv", &err)) return fprintf(stderr, "%s\n", err.msg), 2;
    }
    cfg.train.batch_size = B;
    cfg.train.seq_len = T;
    if (kiln_config_finalize(&cfg, &err)) return fprintf(stderr, "%s\n", err.msg), 2;
    KilnModel m;
    cfg.model.precision = cfg.train.precision;  // as the trainer passes train.precision on
    cfg.model.bf16_kernels = cfg.train.bf16_kernels;  // onednn opens them; auto stays on the sgemm here
    if (gpt_create(&m, &cfg.model, B, T, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    // the trainer's sgemm per product class: train.sgemm's, or auto's verdict for this machine
    char note[640] = "train.sgemm";
    if (cfg.train.sgemm == KILN_SGEMM_AUTO) kernels_sgemm_auto(&m, B * T, &cfg, note, sizeof note);
    if (gpt_sgemm_libs(&m, kiln_sgemm_mask(cfg.train.sgemm), &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    fprintf(stderr, "sgemm: %s (%s)\n", kiln_config_enum_name("train.sgemm", cfg.train.sgemm), note);
    gpt_init_weights(&m, 1);
    KilnRng rng;
    kiln_rng_seed(&rng, 3);
    int32_t *tok = malloc(sizeof(int32_t) * B * T), *tgt = malloc(sizeof(int32_t) * B * T);
    double *times = malloc(sizeof(double) * (steps + 1));
    float loss = 0;
    for (int s = -1; s < steps; s++) {  // step -1 warms up caches and thread pools
        for (int i = 0; i < B * T; i++) {
            tok[i] = (int32_t)(kiln_rng_u64(&rng) % cfg.model.vocab_size);
            tgt[i] = (int32_t)(kiln_rng_u64(&rng) % cfg.model.vocab_size);
        }
        double t0 = kiln_now();
        gpt_zero_grad(&m);
        if (gpt_forward(&m, tok, tgt, B, T, 1.0f, 1, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
        gpt_backward(&m);
        double norm = grad_global_norm(&m);
        adamw_step(&m, &cfg.train, 1e-4f, s + 2, grad_clip_coef(norm, 1.0f));
        if (s >= 0) times[s] = kiln_now() - t0;
        loss = m.loss;
    }
    qsort(times, (size_t)steps, sizeof(double), cmp_double);
    double med = times[steps / 2];
    double flops = gpt_flops_per_token(&m, T) * B * T;
    printf("{\"impl\": \"kiln\", \"params\": %ld, \"B\": %d, \"T\": %d, \"threads\": %d, "
           "\"ms_per_step\": %.2f, \"tokens_per_s\": %.1f, \"gflops\": %.2f, \"loss\": %.4f}\n",
           gpt_num_params(&m), B, T, omp_get_max_threads(), med * 1e3, B * T / med,
           flops / med / 1e9, loss);
    gpt_destroy(&m);
    return 0;
}
