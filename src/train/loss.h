// loss.h: the mean loss of a model over a loader's batches.
#ifndef KILN_TRAIN_LOSS_H
#define KILN_TRAIN_LOSS_H

#include "kiln/model.h"
#include "train/loader.h"

// Mean loss over the loader's batches (all of them if max_batches is 0), from its start.
int evaluate_loss(KilnModel *m, KilnLoader *val, int max_batches, double *loss, KilnErr *err);

#endif
