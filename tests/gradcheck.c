// gradcheck.c: see gradcheck.h.
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static double rel_err(double a, double b, double floor) {
    return fabs(a - b) / fmax(fmax(fabs(a), fabs(b)), floor);
}

double gradcheck(const char *what, GcTensor *ts, int nt, GcLoss loss, GcGrad grad, void *ctx,
                 GcOptions opt) {
    grad(ctx);
    KilnRng rng;
    kiln_rng_seed(&rng, 12345);
    double worst_all = 0.0;
    for (int k = 0; k < nt; k++) {
        GcTensor *t = &ts[k];
        long lo = opt.lo, hi = opt.hi ? (opt.hi < t->n ? opt.hi : t->n) : t->n;
        if (hi <= lo) continue;
        float *orig = malloc(sizeof(float) * t->n);
        float *u = malloc(sizeof(float) * t->n);
        for (long i = 0; i < t->n; i++) orig[i] = t->data[i];
        double worst = 0.0;
        int skipped = 0;
        // Errors are relative to the size the derivative has without cancellation:
        // |g|_2 for a random +-1 direction, max|g_i| for a coordinate. fp32 noise
        // in the loss makes smaller derivatives meaningless.
        double l2 = 0.0, amax = 0.0;
        for (long i = lo; i < hi; i++) {
            l2 += (double)t->grad[i] * t->grad[i];
            amax = fmax(amax, fabs(t->grad[i]));
        }
        l2 = sqrt(l2);
        for (int d = 0; d < opt.directions + opt.coordinates; d++) {
            double analytic = 0.0;
            for (long i = 0; i < t->n; i++) u[i] = 0.0f;
            if (d < opt.directions) {
                for (long i = lo; i < hi; i++) u[i] = kiln_rng_uniform(&rng) < 0.5f ? -1.0f : 1.0f;
            } else {
                long i = lo + (long)(kiln_rng_u64(&rng) % (uint64_t)(hi - lo));
                u[i] = 1.0f;
            }
            for (long i = lo; i < hi; i++) analytic += (double)t->grad[i] * u[i];
            double h = opt.h, lp, lm;
            int smooth = 1;
            for (int tries = 0;; tries++) {
                for (long i = 0; i < t->n; i++) t->data[i] = orig[i] + (float)h * u[i];
                lp = loss(ctx);
                int ok = !opt.smooth || opt.smooth(ctx);
                for (long i = 0; i < t->n; i++) t->data[i] = orig[i] - (float)h * u[i];
                lm = loss(ctx);
                ok = ok && (!opt.smooth || opt.smooth(ctx));
                if (ok) break;
                if (tries == 5) {
                    smooth = 0;
                    break;
                }
                h *= 0.5;
            }
            for (long i = 0; i < t->n; i++) t->data[i] = orig[i];
            if (!smooth) {  // every step crossed a kink: this direction says nothing
                skipped++;
                continue;
            }
            double numeric = (lp - lm) / (2.0 * h);
            double f = fmax(d < opt.directions ? l2 : 1e-2 * amax, 1e-6);
            double e = rel_err(analytic, numeric, f);
            if (e > worst) worst = e;
            if (e > opt.tol)
                printf("  %s %s: %s %d: analytic %.8g numeric %.8g rel err %.2e\n", what, t->name,
                       d < opt.directions ? "direction" : "coordinate", d, analytic, numeric, e);
        }
        if (skipped == opt.directions + opt.coordinates) worst = INFINITY;  // nothing was checked
        printf("%-6s %-28s %-22s worst rel err %.2e%s\n", worst <= opt.tol ? "ok" : "FAIL", what, t->name,
               worst, skipped ? " (some steps crossed a kink and were skipped)" : "");
        if (worst > worst_all) worst_all = worst;
        free(orig);
        free(u);
    }
    return worst_all;
}
