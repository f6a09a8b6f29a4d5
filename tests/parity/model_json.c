// model_json.c: see model_json.h.
#include "model_json.h"

void model_config_json(cJSON *m, const KilnModelConfig *mc) {
    cJSON_AddNumberToObject(m, "vocab_size", mc->vocab_size);
    cJSON_AddNumberToObject(m, "block_size", mc->block_size);
    cJSON_AddNumberToObject(m, "n_layer", mc->n_layer);
    cJSON_AddNumberToObject(m, "n_head", mc->n_head);
    cJSON_AddNumberToObject(m, "n_kv_head", mc->n_kv_head);
    cJSON_AddNumberToObject(m, "n_embd", mc->n_embd);
    cJSON_AddNumberToObject(m, "ffn_hidden", mc->ffn_hidden);
    cJSON_AddStringToObject(m, "pos", kiln_config_enum_name("model.pos", mc->pos));
    cJSON_AddStringToObject(m, "norm", kiln_config_enum_name("model.norm", mc->norm));
    cJSON_AddStringToObject(m, "act", kiln_config_enum_name("model.act", mc->act));
    cJSON_AddBoolToObject(m, "bias", mc->bias);
    cJSON_AddBoolToObject(m, "tied", mc->tied);
    cJSON_AddNumberToObject(m, "norm_eps", mc->norm_eps);
    cJSON_AddNumberToObject(m, "rope_theta", mc->rope_theta);
}
