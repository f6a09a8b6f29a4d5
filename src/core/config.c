// config.c: one table of keys; YAML files and --set overrides both go through it.
#include "kiln/config.h"

#include "core/parse.h"
#include "core/yaml.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum { T_INT, T_U64, T_FLOAT, T_BOOL, T_STR, T_ENUM } KeyType;

typedef struct {
    const char *key;
    KeyType type;
    size_t offset;
    size_t size;                // T_STR: buffer size
    const char *const *names;   // T_ENUM: NULL-terminated names in enum order
    const char *doc;
} KeySpec;

static const char *const POS_NAMES[] = {"learned", "rope", NULL};
static const char *const NORM_NAMES[] = {"layernorm", "rmsnorm", NULL};
static const char *const ACT_NAMES[] = {"gelu", "gelu_erf", "relu", "swiglu", NULL};
static const char *const SCHEDULE_NAMES[] = {"cosine", "linear", "step", "inv_sqrt", "wsd", "constant", NULL};
static const char *const INIT_NAMES[] = {"gpt2", "small", "tfixup", NULL};
static const char *const OPTIMIZER_NAMES[] = {"adamw", "sgd", "lion", NULL};
static const char *const RAMP_NAMES[] = {"linear", "step", NULL};
static const char *const SPIKE_NAMES[] = {"rollback", "skip", "stop", NULL};
static const char *const PRECISION_NAMES[] = {"fp32", "bf16", NULL};
static const char *const BF16K_NAMES[] = {"auto", "sgemm", "onednn", NULL};
// train.sgemm: auto, the eight per-class triples (1 + class mask), and two shorthands
static const char *const SGEMM_NAMES[] = {"auto",
                                          "openblas,openblas,openblas", "onednn,openblas,openblas",
                                          "openblas,onednn,openblas",   "onednn,onednn,openblas",
                                          "openblas,openblas,onednn",   "onednn,openblas,onednn",
                                          "openblas,onednn,onednn",     "onednn,onednn,onednn",
                                          "openblas", "onednn", NULL};
static const char *const PAR_MODE_NAMES[] = {"sync", "async", NULL};
static const char *const EXTEND_NAMES[] = {"constant", "decay", "stretch", NULL};

#define M(f) offsetof(KilnConfig, model.f)
#define TR(f) offsetof(KilnConfig, train.f)
#define D(f) offsetof(KilnConfig, data.f)
#define E(f) offsetof(KilnConfig, eval.f)
#define P(f) offsetof(KilnConfig, parallel.f)
static const KeySpec KEYS[] = {
    {"model.vocab_size", T_INT, M(vocab_size), 0, NULL, "token vocabulary size"},
    {"model.block_size", T_INT, M(block_size), 0, NULL, "longest sequence the model takes"},
    {"model.n_layer", T_INT, M(n_layer), 0, NULL, "transformer blocks"},
    {"model.n_head", T_INT, M(n_head), 0, NULL, "attention (query) heads"},
    {"model.n_kv_head", T_INT, M(n_kv_head), 0, NULL, "key/value heads; fewer than n_head is GQA; 0 = n_head"},
    {"model.n_embd", T_INT, M(n_embd), 0, NULL, "residual stream width"},
    {"model.ffn_hidden", T_INT, M(ffn_hidden), 0, NULL, "MLP hidden width; 0 = 4*n_embd (SwiGLU: 8/3*n_embd, rounded up to 64)"},
    {"model.pos", T_ENUM, M(pos), 0, POS_NAMES, "positions: learned | rope"},
    {"model.norm", T_ENUM, M(norm), 0, NORM_NAMES, "normalisation: layernorm | rmsnorm"},
    {"model.act", T_ENUM, M(act), 0, ACT_NAMES, "MLP: gelu (tanh) | gelu_erf | relu | swiglu"},
    {"model.bias", T_BOOL, M(bias), 0, NULL, "biases in linear layers and LayerNorm"},
    {"model.tied", T_BOOL, M(tied), 0, NULL, "lm_head shares the token embedding"},
    {"model.dropout", T_FLOAT, M(dropout), 0, NULL, "dropout on embeddings, attention and residual branches"},
    {"model.norm_eps", T_FLOAT, M(norm_eps), 0, NULL, "epsilon inside LayerNorm/RMSNorm"},
    {"model.rope_theta", T_FLOAT, M(rope_theta), 0, NULL, "RoPE base"},
    {"model.init_std", T_FLOAT, M(init_std), 0, NULL, "std of the normal init (residual projections / sqrt(2*n_layer))"},
    {"model.init", T_ENUM, M(init), 0, INIT_NAMES,
     "weight init: gpt2 (normal init_std, scaled residuals) | small (normal sqrt(2/(5 n_embd))) | tfixup (T-Fixup)"},
    {"train.batch_size", T_INT, TR(batch_size), 0, NULL, "sequences per micro-batch"},
    {"train.seq_len", T_INT, TR(seq_len), 0, NULL, "tokens per sequence; 0 = model.block_size"},
    {"train.grad_accum", T_INT, TR(grad_accum), 0, NULL, "micro-batches per optimizer step"},
    {"train.steps", T_INT, TR(steps), 0, NULL, "optimizer steps"},
    {"train.lr", T_FLOAT, TR(lr), 0, NULL, "peak learning rate"},
    {"train.min_lr", T_FLOAT, TR(min_lr), 0, NULL, "learning rate at the end of the cosine decay"},
    {"train.warmup_steps", T_INT, TR(warmup_steps), 0, NULL, "linear warmup steps"},
    {"train.decay_steps", T_INT, TR(decay_steps), 0, NULL, "step where the decay reaches min_lr; 0 = steps"},
    {"train.schedule", T_ENUM, TR(schedule), 0, SCHEDULE_NAMES,
     "after warmup: cosine | linear | step | inv_sqrt | wsd (warmup-stable-decay) | constant; min_lr is the floor"},
    {"train.step_every", T_INT, TR(step_every), 0, NULL, "step schedule: steps between drops"},
    {"train.step_factor", T_FLOAT, TR(step_factor), 0, NULL, "step schedule: factor applied at each drop"},
    {"train.wsd_decay_frac", T_FLOAT, TR(wsd_decay_frac), 0, NULL, "wsd: share of decay_steps spent decaying (linearly) at the end"},
    {"train.extend", T_ENUM, TR(extend), 0, EXTEND_NAMES,
     "--resume with more train.steps than planned: constant (hold the final lr) | decay (hold it, then the last "
     "wsd_decay_frac of the extension linearly to min_lr) | stretch (re-plan the schedule over the new steps)"},
    {"train.extend_from", T_INT, TR(extend_from), 0, NULL,
     "set by --resume: the planned steps an extension continues from (the schedule up to them is unchanged); 0 = none"},
    {"train.extend_lr", T_FLOAT, TR(extend_lr), 0, NULL, "set by --resume: the lr at the end of the planned steps, where an extension starts"},
    {"train.optimizer", T_ENUM, TR(optimizer), 0, OPTIMIZER_NAMES, "adamw | sgd (with momentum) | lion"},
    {"train.beta1", T_FLOAT, TR(beta1), 0, NULL, "AdamW beta1; Lion: mix of momentum and gradient in the update"},
    {"train.beta2", T_FLOAT, TR(beta2), 0, NULL, "AdamW beta2; Lion: momentum decay (Lion's usual value is 0.99)"},
    {"train.eps", T_FLOAT, TR(eps), 0, NULL, "AdamW epsilon"},
    {"train.momentum", T_FLOAT, TR(momentum), 0, NULL, "SGD momentum (dampening 0, as torch.optim.SGD); 0 = plain SGD"},
    {"train.nesterov", T_BOOL, TR(nesterov), 0, NULL, "SGD: Nesterov momentum"},
    {"train.weight_decay", T_FLOAT, TR(weight_decay), 0, NULL, "decoupled weight decay on matrices"},
    {"train.decay_embeddings", T_BOOL, TR(decay_embeddings), 0, NULL, "also decay embeddings (nanoGPT does)"},
    {"train.l1", T_FLOAT, TR(l1), 0, NULL, "L1 penalty l1*sum|w| on the weight-decayed tensors"},
    {"train.l2", T_FLOAT, TR(l2), 0, NULL, "L2 penalty l2/2*sum w^2 on the weight-decayed tensors"},
    {"train.grad_clip", T_FLOAT, TR(grad_clip), 0, NULL, "clip the global gradient norm to this; 0 = off"},
    {"train.seed", T_U64, TR(seed), 0, NULL, "seed for init and dropout"},
    {"train.log_every", T_INT, TR(log_every), 0, NULL, "print a line every N steps"},
    {"train.eval_every", T_INT, TR(eval_every), 0, NULL, "validation loss every N steps; 0 = at the end only"},
    {"train.eval_batches", T_INT, TR(eval_batches), 0, NULL, "validation batches; 0 = the whole split"},
    {"train.checkpoint_every", T_INT, TR(checkpoint_every), 0, NULL, "checkpoint every N steps; 0 = at the end only"},
    {"train.checkpoint_minutes", T_FLOAT, TR(checkpoint_minutes), 0, NULL, "also checkpoint every N minutes; 0 = off"},
    {"train.keep_last", T_INT, TR(keep_last), 0, NULL, "checkpoints kept (besides milestones); 0 = all"},
    {"train.keep_every", T_INT, TR(keep_every), 0, NULL, "milestones: checkpoints at multiples of this step are kept; 0 = none"},
    {"train.batch_ramp_start", T_U64, TR(batch_ramp_start), 0, NULL, "batch ramp: first global batch in tokens (rounded to micro-batches); 0 = no ramp"},
    {"train.batch_ramp_tokens", T_U64, TR(batch_ramp_tokens), 0, NULL, "batch ramp: tokens over which the batch reaches its target"},
    {"train.batch_ramp", T_ENUM, TR(batch_ramp), 0, RAMP_NAMES, "batch ramp shape: linear | step"},
    {"train.batch_ramp_stages", T_INT, TR(batch_ramp_stages), 0, NULL, "step ramp: equal increments"},
    {"train.spike_z", T_FLOAT, TR(spike_z), 0, NULL, "spike guard: loss z-score that counts as a spike; 0 = off"},
    {"train.spike_grad_z", T_FLOAT, TR(spike_grad_z), 0, NULL, "spike guard: gradient-norm z-score that counts as a spike; 0 = off"},
    {"train.spike_window", T_INT, TR(spike_window), 0, NULL, "spike guard: recent steps in the mean and std"},
    {"train.spike_min_history", T_INT, TR(spike_min_history), 0, NULL, "spike guard: steps seen before it judges"},
    {"train.spike_action", T_ENUM, TR(spike_action), 0, SPIKE_NAMES, "on a spike: rollback (to the last checkpoint, skipping the batches) | skip (the batches only) | stop"},
    {"train.spike_skip_steps", T_INT, TR(spike_skip_steps), 0, NULL, "steps of batches skipped, ending at the spike"},
    {"train.spike_lr_factor", T_FLOAT, TR(spike_lr_factor), 0, NULL, "learning-rate multiplier applied at each spike"},
    {"train.spike_max", T_INT, TR(spike_max), 0, NULL, "spikes handled before the run stops with an error"},
    {"train.peak_tflops", T_FLOAT, TR(peak_tflops), 0, NULL, "peak for MFU in TFLOP/s; 0 = the larger of the theoretical peak and a measured sgemm"},
    {"train.threads", T_INT, TR(threads), 0, NULL, "threads; 0 = OMP_NUM_THREADS or all cores"},
    {"train.recompute", T_BOOL, TR(recompute), 0, NULL,
     "keep only each block's output and recompute its activations in backward (less memory, ~1/3 more compute)"},
    {"train.precision", T_ENUM, TR(precision), 0, PRECISION_NAMES,
     "matmuls: fp32 | bf16 (operands rounded to bf16, fp32 sums, as torch.autocast; weights, optimizer, norms, softmax, loss in fp32)"},
    {"train.sgemm", T_ENUM, TR(sgemm), 0, SGEMM_NAMES,
     "the linear layers' sgemm: auto (this machine's faster per product, raced once and cached) | openblas | onednn | "
     "per product forward,input-gradient,weight-gradient (e.g. onednn,onednn,openblas)"},
    {"train.bf16_kernels", T_ENUM, TR(bf16_kernels), 0, BF16K_NAMES,
     "bf16's linear layers: auto (the faster of the two, raced at start) | sgemm (fp32 sgemm on bf16-rounded operands) | onednn (bf16 instructions)"},
    {"data.train", T_STR, D(train), sizeof(((KilnConfig *)0)->data.train), NULL, "training shards (path or glob)"},
    {"data.val", T_STR, D(val), sizeof(((KilnConfig *)0)->data.val), NULL, "validation shards (path or glob)"},
    {"data.shuffle", T_BOOL, D(shuffle), 0, NULL, "shuffle training sequences (seeded by train.seed, new order each epoch)"},
    {"eval.tasks", T_STR, E(tasks), sizeof(((KilnConfig *)0)->eval.tasks), NULL, "benchmarks scored during training, comma-separated (see kiln eval); empty = none"},
    {"eval.every", T_INT, E(every), 0, NULL, "steps between benchmark runs; 0 = at the end only"},
    {"eval.limit", T_INT, E(limit), 0, NULL, "items per task; 0 = all"},
    {"eval.shots", T_INT, E(shots), 0, NULL, "few-shot examples; -1 = each task's default"},
    {"eval.tokenizer", T_STR, E(tokenizer), sizeof(((KilnConfig *)0)->eval.tokenizer), NULL, "the model's tokenizer file or 'bytes'; empty = from the shards' manifest"},
    {"eval.task_dir", T_STR, E(task_dir), sizeof(((KilnConfig *)0)->eval.task_dir), NULL, "task files; empty = as kiln eval ($KILN_TASKS, ./tasks, tasks/ beside kiln)"},
    {"eval.data_dir", T_STR, E(data_dir), sizeof(((KilnConfig *)0)->eval.data_dir), NULL, "datasets; empty = ../shared/data"},
    {"parallel.dp", T_INT, P(dp), 0, NULL,
     "data-parallel replicas under mpirun (each takes its share of a step's micro-batches); 0 = ranks / parallel.tp"},
    {"parallel.tp", T_INT, P(tp), 0, NULL,
     "tensor-parallel ranks per replica: each holds and computes 1/tp of the heads, the MLP's hidden units and "
     "the vocabulary, with an all-reduce after each block's attention and MLP (Megatron-LM); 1 = none"},
    {"parallel.pp", T_INT, P(pp), 0, NULL,
     "pipeline stages per replica: each holds model.n_layer / pp blocks (the first the embeddings, the last the "
     "head); a step's micro-batches run through them in the 1F1B order; 1 = none"},
    {"parallel.zero", T_INT, P(zero), 0, NULL,
     "1: ZeRO-1, each data-parallel rank keeps and updates only its 1/N of the optimizer state (AdamW's m and v); "
     "2: ZeRO-2, and only its 1/N of the summed gradients (each block's reduce-scattered as its backward pass "
     "ends); 0: every rank all of it"},
    {"parallel.mode", T_ENUM, P(mode), 0, PAR_MODE_NAMES,
     "sync: the ranks take every step together | async: rank 0 a parameter server applying each worker's "
     "gradient as it comes (asynchronous SGD)"},
    {"parallel.staleness", T_INT, P(staleness), 0, NULL,
     "async: a gradient computed on weights this many updates older than the server's is dropped"},
    {"parallel.timeout_s", T_FLOAT, P(timeout_s), 0, NULL,
     "a rank that has waited this long for the others, with rank 0's heartbeat as old, ends the job "
     "(a peer died or hangs); 0 = wait forever"},
    {"out_dir", T_STR, offsetof(KilnConfig, out_dir), sizeof(((KilnConfig *)0)->out_dir), NULL, "run directory for checkpoints"},
};
#undef M
#undef TR
#undef D
#undef E
#undef P
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

void kiln_config_defaults(KilnConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    KilnModelConfig *m = &cfg->model;
    m->vocab_size = 256;
    m->block_size = 256;
    m->n_layer = 4;
    m->n_head = 4;
    m->n_embd = 128;
    m->pos = KILN_POS_LEARNED;
    m->norm = KILN_NORM_LAYERNORM;
    m->act = KILN_ACT_GELU;
    m->bias = 1;
    m->tied = 1;
    m->norm_eps = 1e-5f;
    m->rope_theta = 10000.0f;
    m->init_std = 0.02f;
    KilnTrainConfig *t = &cfg->train;
    t->batch_size = 8;
    t->grad_accum = 1;
    t->steps = 100;
    t->lr = 1e-3f;
    t->min_lr = 1e-4f;
    t->step_every = 1000;
    t->step_factor = 0.1f;
    t->wsd_decay_frac = 0.2f;
    t->beta1 = 0.9f;
    t->beta2 = 0.95f;
    t->eps = 1e-8f;
    t->momentum = 0.9f;
    t->weight_decay = 0.1f;
    t->grad_clip = 1.0f;
    t->seed = 1337;
    t->log_every = 1;
    t->keep_last = 3;
    t->batch_ramp_stages = 4;
    t->spike_window = 100;
    t->spike_min_history = 20;
    t->spike_skip_steps = 1;
    t->spike_lr_factor = 1.0f;
    t->spike_max = 5;
    t->eval_batches = 0;
    cfg->data.shuffle = 1;
    cfg->eval.shots = -1;
    cfg->parallel.timeout_s = 600;
    cfg->parallel.staleness = 4;
    cfg->parallel.tp = 1;
    cfg->parallel.pp = 1;
    snprintf(cfg->out_dir, sizeof cfg->out_dir, "runs/default");
}

static const KeySpec *find_key(const char *key) {
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(KEYS[i].key, key) == 0) return &KEYS[i];
    return NULL;
}

static const char *type_name(const KeySpec *k) {
    switch (k->type) {
    case T_INT: return "integer";
    case T_U64: return "unsigned integer";
    case T_FLOAT: return "number";
    case T_BOOL: return "boolean (true/false)";
    case T_STR: return "string";
    case T_ENUM: return "one of the names listed";
    }
    return "?";
}

int kiln_config_set(KilnConfig *cfg, const char *key, const char *value, const char *origin,
                    KilnErr *err) {
    const KeySpec *k = find_key(key);
    if (!k) return kiln_fail(err, "%s: unknown config key '%s' (see `kiln help config`)", origin, key);
    char *p = (char *)cfg + k->offset;
    switch (k->type) {
    case T_INT: {
        long v;
        if (kiln_parse_long(value, -2147483647L, 2147483647L, &v))
            return kiln_fail(err, "%s: key '%s' wants an integer, got '%s'", origin, key, value);
        *(int *)p = (int)v;
        break;
    }
    case T_U64: {
        uint64_t v;
        if (kiln_parse_u64(value, &v))
            return kiln_fail(err, "%s: key '%s' wants an unsigned integer, got '%s'", origin, key, value);
        *(unsigned long long *)p = v;
        break;
    }
    case T_FLOAT: {
        float v;
        if (kiln_parse_float(value, &v) || !isfinite(v))
            return kiln_fail(err, "%s: key '%s' wants a number, got '%s'", origin, key, value);
        *(float *)p = v;
        break;
    }
    case T_BOOL:
        if (kiln_parse_bool(value, (int *)p))
            return kiln_fail(err, "%s: key '%s' wants true or false, got '%s'", origin, key, value);
        break;
    case T_STR:
        if (strlen(value) >= k->size)
            return kiln_fail(err, "%s: key '%s' value is longer than %zu characters", origin, key, k->size - 1);
        strcpy(p, value);
        break;
    case T_ENUM: {
        for (int i = 0; k->names[i]; i++) {
            if (!strcmp(k->names[i], value)) {
                *(int *)p = i;
                return 0;
            }
        }
        char list[512] = "";
        for (int i = 0; k->names[i]; i++) {
            strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
            strncat(list, k->names[i], sizeof list - strlen(list) - 1);
        }
        return kiln_fail(err, "%s: key '%s' must be one of %s, got '%s'", origin, key, list, value);
    }
    }
    return 0;
}

// A mapping's keys joined to prefix with dots; scalar leaves go through
// kiln_config_set with their file:line. level counts the open mappings.
static int load_map(KilnConfig *cfg, const KyNode *map, const char *prefix, int level, const char *name,
                    KilnErr *err) {
    enum { MAXDEPTH = 8, MAXKEY = 128 };
    const char *last = "?";  // the key before, which the old reader named for a list given as a key
    for (int i = 0; i < map->nkids; i += 2) {
        const KyNode *k = map->kids[i], *v = i + 1 < map->nkids ? map->kids[i + 1] : NULL;
        if (k->type == KY_MAP) return kiln_fail(err, "%s:%d: a mapping cannot be a key", name, k->line);
        if (k->type == KY_SEQ)
            return kiln_fail(err, "%s:%d: lists are not supported here (key '%s')", name, k->line, last);
        if (strlen(k->str) >= MAXKEY) return kiln_fail(err, "%s:%d: key too long", name, k->line);
        last = k->str;
        if (!v) break;  // the file ends (or breaks) after this key
        char key[MAXDEPTH * (MAXKEY + 1)];
        snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", k->str);
        if (v->type == KY_SEQ)
            return kiln_fail(err, "%s:%d: lists are not supported here (key '%s')", name, v->line, k->str);
        if (v->type == KY_MAP) {
            if (level >= MAXDEPTH) return kiln_fail(err, "%s:%d: nesting too deep", name, v->line);
            if (load_map(cfg, v, key, level + 1, name, err)) return -1;
            continue;
        }
        char origin[1200];
        snprintf(origin, sizeof origin, "%s:%d", name, v->line);
        if (v->len != strlen(v->str)) return kiln_fail(err, "%s: key '%s' has a NUL byte in its value", origin, key);
        if (kiln_config_set(cfg, key, v->str, origin, err)) return -1;
    }
    return 0;
}

// Every document of the stream: a mapping of keys, nested mappings making
// dotted keys. The keys before a YAML error are checked (and set) first, so
// the first complaint is the one nearest the top of the file.
int kiln_config_load_yaml_string(KilnConfig *cfg, const char *text, size_t len, const char *name,
                                 KilnErr *err) {
    KilnYaml y;
    KilnErr yaml_err;
    int bad_yaml = ky_parse(&y, text, len, name, KY_NO_ALIASES | KY_PARTIAL, &yaml_err), rc = 0;
    for (int d = 0; d < y.ndocs && !rc; d++) {
        const KyNode *root = y.docs[d];
        if (!root) continue;
        if (root->type == KY_MAP) rc = load_map(cfg, root, "", 1, name, err);
        else if (root->type == KY_SEQ)
            rc = kiln_fail(err, "%s:%d: lists are not supported here (key '?')", name, root->line);
        else if (*root->str)
            rc = kiln_fail(err, "%s:%d: expected a mapping of keys at the top level", name, root->line);
    }
    ky_free(&y);
    if (!rc && bad_yaml) {
        if (err) *err = yaml_err;
        rc = -1;
    }
    return rc;
}

int kiln_config_load_yaml(KilnConfig *cfg, const char *path, KilnErr *err) {
    char *text;
    size_t len;
    if (kiln_read_file(path, &text, &len, err)) return -1;
    int rc = kiln_config_load_yaml_string(cfg, text, len, path, err);
    free(text);
    return rc;
}

int kiln_config_finalize(KilnConfig *cfg, KilnErr *err) {
    KilnModelConfig *m = &cfg->model;
    KilnTrainConfig *t = &cfg->train;
#define NEED(cond, ...) \
    if (!(cond)) return kiln_fail(err, __VA_ARGS__)
#define AT_MOST(val, max, key) \
    NEED((val) <= (max), key " (%d) is too large: at most %ld", (val), (long)(max))
    // before ffn_hidden is derived from n_embd: 8 * n_embd must not overflow
    AT_MOST(m->n_embd, KILN_MAX_N_EMBD, "model.n_embd");
    AT_MOST(m->ffn_hidden, KILN_MAX_FFN_HIDDEN, "model.ffn_hidden");
    AT_MOST(m->n_layer, KILN_MAX_N_LAYER, "model.n_layer");
    AT_MOST(m->vocab_size, KILN_MAX_VOCAB, "model.vocab_size");
    AT_MOST(m->block_size, KILN_MAX_BLOCK, "model.block_size");
    AT_MOST(t->batch_size, KILN_MAX_BATCH, "train.batch_size");
#undef AT_MOST
    if (m->n_kv_head == 0) m->n_kv_head = m->n_head;
    if (m->ffn_hidden == 0 && m->n_embd > 0) {  // a negative n_embd is refused below, by name
        if (m->act == KILN_ACT_SWIGLU)
            m->ffn_hidden = ((8 * m->n_embd / 3) + 63) / 64 * 64;
        else
            m->ffn_hidden = 4 * m->n_embd;
    }
    if (t->seq_len == 0) t->seq_len = m->block_size;
    if (t->decay_steps == 0) t->decay_steps = t->steps;
    NEED(m->vocab_size >= 1, "model.vocab_size must be positive (got %d)", m->vocab_size);
    NEED(m->block_size >= 1, "model.block_size must be positive (got %d)", m->block_size);
    NEED(m->n_layer >= 1, "model.n_layer must be positive (got %d)", m->n_layer);
    NEED(m->n_head >= 1, "model.n_head must be positive (got %d)", m->n_head);
    NEED(m->n_embd >= 1 && m->n_embd % m->n_head == 0,
         "model.n_embd (%d) must be a positive multiple of model.n_head (%d)", m->n_embd, m->n_head);
    NEED(m->n_kv_head >= 1 && m->n_head % m->n_kv_head == 0,
         "model.n_kv_head (%d) must divide model.n_head (%d)", m->n_kv_head, m->n_head);
    NEED(m->pos != KILN_POS_ROPE || (m->n_embd / m->n_head) % 2 == 0,
         "model.pos=rope needs an even head size (n_embd/n_head = %d)", m->n_embd / m->n_head);
    NEED(m->ffn_hidden >= 1, "model.ffn_hidden must be positive (got %d)", m->ffn_hidden);
    NEED(m->dropout >= 0 && m->dropout < 1, "model.dropout must be in [0, 1) (got %g)", m->dropout);
    NEED(m->norm_eps > 0, "model.norm_eps must be positive");
    NEED(m->init_std > 0, "model.init_std must be positive");
    NEED(t->batch_size >= 1, "train.batch_size must be positive (got %d)", t->batch_size);
    NEED(t->seq_len >= 1 && t->seq_len <= m->block_size,
         "train.seq_len (%d) must be in 1..model.block_size (%d)", t->seq_len, m->block_size);
    NEED((long)t->batch_size * t->seq_len <= KILN_MAX_BATCH_TOKENS,
         "train.batch_size (%d) x train.seq_len (%d) is too large: at most %ld tokens per micro-batch", t->batch_size,
         t->seq_len, KILN_MAX_BATCH_TOKENS);
    NEED(t->grad_accum >= 1, "train.grad_accum must be positive (got %d)", t->grad_accum);
    NEED(t->steps >= 0, "train.steps must not be negative");
    NEED(t->lr >= 0 && t->min_lr >= 0, "train.lr and train.min_lr must not be negative");
    NEED(t->beta1 >= 0 && t->beta1 < 1 && t->beta2 >= 0 && t->beta2 < 1, "train.beta1/beta2 must be in [0, 1)");
    NEED(t->eps > 0, "train.eps must be positive");
    NEED(t->momentum >= 0 && t->momentum < 1, "train.momentum must be in [0, 1) (got %g)", t->momentum);
    NEED(!t->nesterov || t->momentum > 0, "train.nesterov needs train.momentum > 0");
    NEED(t->l1 >= 0 && t->l2 >= 0 && t->weight_decay >= 0, "train.l1, l2 and weight_decay must not be negative");
    NEED(t->warmup_steps >= 0 && t->decay_steps >= 0, "train.warmup_steps/decay_steps must not be negative");
    // not scaled down silently: a trial run should have the schedule it asked for, so say how to get one
    NEED(t->warmup_steps <= t->steps || t->steps == 0,
         "train.warmup_steps (%d) exceeds the run (train.steps = %d): shorten the warmup to at most the run, "
         "e.g. --set train.warmup_steps=%d",
         t->warmup_steps, t->steps, t->steps / 10);
    NEED(t->min_lr <= t->lr, "train.min_lr (%g) is the floor and must not exceed train.lr (%g)", t->min_lr, t->lr);
    NEED(t->step_every >= 1 && t->step_factor > 0 && t->step_factor <= 1,
         "train.step_every must be positive and train.step_factor in (0, 1]");
    NEED(t->wsd_decay_frac >= 0 && t->wsd_decay_frac <= 1, "train.wsd_decay_frac must be in [0, 1]");
    NEED(t->extend_from >= 0 && (t->extend_from == 0 || t->extend_from <= t->steps),
         "train.extend_from (%d) must be in 0..train.steps (%d)", t->extend_from, t->steps);
    NEED(t->extend_lr >= 0, "train.extend_lr must not be negative");
    NEED(t->checkpoint_minutes >= 0 && t->keep_last >= 0 && t->keep_every >= 0,
         "train.checkpoint_minutes, keep_last and keep_every must not be negative");
    NEED(t->batch_ramp_start == 0 || t->batch_ramp_tokens > 0,
         "train.batch_ramp_start is set but train.batch_ramp_tokens is 0: over how many tokens should the batch grow?");
    NEED(t->batch_ramp_stages >= 1, "train.batch_ramp_stages must be positive");
    NEED(t->spike_z >= 0 && t->spike_grad_z >= 0, "train.spike_z and spike_grad_z must not be negative");
    NEED(t->spike_window >= 2 && t->spike_window <= KILN_SPIKE_WINDOW_MAX,
         "train.spike_window must be in 2..%d (got %d)", KILN_SPIKE_WINDOW_MAX, t->spike_window);
    NEED(t->spike_min_history >= 2 && t->spike_min_history <= t->spike_window,
         "train.spike_min_history must be in 2..train.spike_window");
    NEED(t->spike_skip_steps >= 1 && t->spike_skip_steps <= 64, "train.spike_skip_steps must be in 1..64");
    NEED(t->spike_lr_factor > 0 && t->spike_lr_factor <= 1, "train.spike_lr_factor must be in (0, 1]");
    NEED(cfg->eval.every >= 0 && cfg->eval.limit >= 0 && cfg->eval.shots >= -1,
         "eval.every and eval.limit must not be negative, eval.shots must be -1 or more");
    NEED(t->spike_max >= 0 && t->peak_tflops >= 0, "train.spike_max and train.peak_tflops must not be negative");
    NEED(t->log_every >= 1, "train.log_every must be positive");
    NEED(t->eval_every >= 0 && t->eval_batches >= 0 && t->checkpoint_every >= 0,
         "train.eval_every, eval_batches and checkpoint_every must not be negative");
    NEED(t->threads >= 0, "train.threads must not be negative");
    NEED(cfg->parallel.dp >= 0, "parallel.dp must not be negative");
    NEED(cfg->parallel.tp >= 1, "parallel.tp must be at least 1 (got %d)", cfg->parallel.tp);
    NEED(cfg->parallel.pp >= 1, "parallel.pp must be at least 1 (got %d)", cfg->parallel.pp);
    NEED(cfg->parallel.mode == KILN_PAR_SYNC || (cfg->parallel.tp == 1 && cfg->parallel.pp == 1),
         "parallel.tp and parallel.pp split each step's model among ranks that step together: they do not apply to "
         "parallel.mode: async");
    NEED(cfg->parallel.timeout_s >= 0, "parallel.timeout_s must not be negative");
    NEED(cfg->parallel.staleness >= 0, "parallel.staleness must not be negative");
    NEED(cfg->parallel.mode == KILN_PAR_SYNC || !cfg->parallel.zero,
         "parallel.zero shards the optimizer among ranks that step together: it does not apply to parallel.mode: async");
    NEED(cfg->parallel.zero >= 0 && cfg->parallel.zero <= 2,
         "parallel.zero must be 0, 1 (ZeRO-1: the optimizer state sharded) or 2 (ZeRO-2: the gradients too; got %d)",
         cfg->parallel.zero);
#undef NEED
    return 0;
}

static void write_value(const KilnConfig *cfg, const KeySpec *k, FILE *f) {
    const char *p = (const char *)cfg + k->offset;
    switch (k->type) {
    case T_INT: fprintf(f, "%d", *(const int *)p); break;
    case T_U64: fprintf(f, "%llu", *(const unsigned long long *)p); break;
    case T_FLOAT: {
        char num[32];
        fputs(kiln_float_str(*(const float *)p, num), f);
        break;
    }
    case T_BOOL: fprintf(f, "%s", *(const int *)p ? "true" : "false"); break;
    case T_STR: fprintf(f, "\"%s\"", p); break;
    case T_ENUM: fprintf(f, "%s", k->names[*(const int *)p]); break;
    }
}

void kiln_config_write_yaml(const KilnConfig *cfg, FILE *f) {
    char section[64] = "";
    for (size_t i = 0; i < NKEYS; i++) {
        const char *dot = strchr(KEYS[i].key, '.');
        if (dot) {
            size_t n = (size_t)(dot - KEYS[i].key);
            if (strlen(section) != n || strncmp(section, KEYS[i].key, n)) {
                snprintf(section, sizeof section, "%.*s", (int)n, KEYS[i].key);
                fprintf(f, "%s:\n", section);
            }
            fprintf(f, "  %s: ", dot + 1);
        } else {
            section[0] = 0;
            fprintf(f, "%s: ", KEYS[i].key);
        }
        write_value(cfg, &KEYS[i], f);
        fputc('\n', f);
    }
}

const char *kiln_config_enum_name(const char *key, int value) {
    const KeySpec *k = find_key(key);
    if (!k || k->type != T_ENUM || value < 0) return "?";
    for (int i = 0; k->names[i]; i++)
        if (i == value) return k->names[i];
    return "?";
}

void kiln_config_print_keys(FILE *f) {
    KilnConfig d;
    kiln_config_defaults(&d);
    for (size_t i = 0; i < NKEYS; i++) {
        fprintf(f, "  %-24s %s, default ", KEYS[i].key, type_name(&KEYS[i]));
        write_value(&d, &KEYS[i], f);
        fprintf(f, "\n      %s\n", KEYS[i].doc);
    }
}
