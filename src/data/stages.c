// stages.c: the table of pipeline stages, by name. Each stage lives in the file
// named for it and exports one KilnStageDef.
#include "kiln/data.h"

#include <string.h>

// The stages, in the order a pipeline usually runs them (and `kiln data --help`
// lists them): extraction, cleaning, filters, decontamination, augmentation,
// then the corpus stages.
extern const KilnStageDef STAGE_HTML, STAGE_MAN;
extern const KilnStageDef STAGE_CLEAN, STAGE_PII;
extern const KilnStageDef STAGE_GOPHER_QUALITY, STAGE_GOPHER_REPETITION, STAGE_C4, STAGE_WORDLIST;
extern const KilnStageDef STAGE_CLASSIFIER, STAGE_DECONTAMINATE, STAGE_AUGMENT_GENDER;
extern const KilnStageDef STAGE_EXACT_DEDUP, STAGE_MINHASH_DEDUP, STAGE_LINE_DEDUP, STAGE_SAMPLE;

static const KilnStageDef *const STAGES[] = {
    &STAGE_HTML,           &STAGE_MAN,
    &STAGE_CLEAN,          &STAGE_PII,
    &STAGE_GOPHER_QUALITY, &STAGE_GOPHER_REPETITION, &STAGE_C4,         &STAGE_WORDLIST,
    &STAGE_CLASSIFIER,     &STAGE_DECONTAMINATE,     &STAGE_AUGMENT_GENDER,
    &STAGE_EXACT_DEDUP,    &STAGE_MINHASH_DEDUP,     &STAGE_LINE_DEDUP, &STAGE_SAMPLE,
};

const KilnStageDef *const *stage_all(int *n) {
    *n = (int)(sizeof STAGES / sizeof STAGES[0]);
    return STAGES;
}

const KilnStageDef *stage_find(const char *name) {
    int n;
    const KilnStageDef *const *all = stage_all(&n);
    for (int i = 0; i < n; i++)
        if (!strcmp(all[i]->name, name)) return all[i];
    return NULL;
}
