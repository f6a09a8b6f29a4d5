// fuzz_classifier: a classifier model file (.kcls: header, labels, hashed
// embeddings, output layer), then a prediction with it.
#include "fuzz_util.h"
#include "kiln/classifier.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fuzz_write("model.kcls", data, size, path, sizeof path);
    KilnErr err;
    KilnClassifier *m;
    if (classifier_load(&m, path, &err)) return 0;
    float probs[256];
    if (classifier_nlabels(m) <= 256) {
        static const char text[] = "the quick brown fox, caf\xc3\xa9";
        classifier_predict(m, text, sizeof text - 1, probs);
    }
    classifier_free(m);
    return 0;
}
