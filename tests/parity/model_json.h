// model_json.h: a model config as the "model" object the Python parity checks read.
#ifndef KILN_TEST_MODEL_JSON_H
#define KILN_TEST_MODEL_JSON_H

#include "kiln/config.h"

#include <cjson/cJSON.h>

// Adds mc's fields (enum names as in config files) to the object m.
void model_config_json(cJSON *m, const KilnModelConfig *mc);

#endif
