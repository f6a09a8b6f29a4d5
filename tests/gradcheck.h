// gradcheck.h: finite-difference checks of hand-written backward passes.
// A check perturbs one tensor at a time, x -> x +/- h*u, and compares the central
// difference of a scalar loss with the analytic <grad, u>, for random directions u
// over the whole tensor and for single coordinates.
#ifndef KILN_TEST_GRADCHECK_H
#define KILN_TEST_GRADCHECK_H

#include "kiln/core.h"

typedef struct {
    const char *name;
    float *data;
    float *grad;  // filled by the grad callback
    long n;
} GcTensor;

typedef double (*GcLoss)(void *ctx);  // forward only: the scalar loss
typedef void (*GcGrad)(void *ctx);    // forward + backward: fills every GcTensor.grad

typedef struct {
    double h;          // step
    double tol;        // relative error allowed
    int directions;    // random directions per tensor
    int coordinates;   // single coordinates per tensor
    long lo, hi;       // restrict perturbations to [lo, hi) of each tensor; hi=0: all
    // Optional: after a loss evaluation, says whether the function stayed on the same
    // smooth piece (e.g. no ReLU input changed sign); if not, the step is halved.
    int (*smooth)(void *ctx);
} GcOptions;

// Returns the worst relative error seen; prints a line per tensor.
double gradcheck(const char *what, GcTensor *ts, int nt, GcLoss loss, GcGrad grad, void *ctx,
                 GcOptions opt);

#endif
