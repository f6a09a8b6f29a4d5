// checkpoint.c: crash-safe checkpoints in safetensors plus a JSON state file.
#include "kiln/checkpoint.h"

#include "kiln/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// Named views of flat buffers laid out like the parameters, each under a name
// prefix: ("", params) for weights; ("exp_avg.", m), ("exp_avg_sq.", v) for AdamW.
typedef struct {
    float *base;
    const char *prefix;
} Buffer;

static int save_buffers(const char *path, const KilnModel *m, const Buffer *bufs, int nb,
                        const KilnConfig *cfg, KilnErr *err) {
    int per = gpt_named_tensors(m, m->params, NULL), n = per * nb;
    KilnNamedTensor *nt = calloc((size_t)per, sizeof *nt);
    KilnStTensor *st = calloc((size_t)n, sizeof *st);
    char(*names)[128] = calloc((size_t)n, sizeof *names);
    char *yaml = NULL;
    size_t ylen = 0;
    FILE *mf = open_memstream(&yaml, &ylen);
    if (!nt || !st || !names || !mf) {
        if (mf) fclose(mf);
        free(yaml);
        free(nt);
        free(st);
        free(names);
        return kiln_fail(err, "out of memory");
    }
    kiln_config_write_yaml(cfg, mf);
    fclose(mf);
    for (int b = 0; b < nb; b++) {
        gpt_named_tensors(m, bufs[b].base, nt);
        for (int i = 0; i < per; i++) {
            int k = b * per + i;
            snprintf(names[k], sizeof names[k], "%s%s", bufs[b].prefix, nt[i].name);
            st[k].name = names[k];
            st[k].data = nt[i].data;
            st[k].ndim = nt[i].ndim;
            st[k].shape[0] = nt[i].shape[0];
            st[k].shape[1] = nt[i].shape[1];
        }
    }
    const char *keys[] = {"format", "kiln.config"};
    const char *vals[] = {"pt", yaml};
    int rc = st_write(path, st, n, keys, vals, 2, err);
    free(yaml);
    free(nt);
    free(st);
    free(names);
    return rc;
}

static int load_buffers(const char *path, const KilnModel *m, const Buffer *bufs, int nb,
                        KilnErr *err) {
    KilnStFile f;
    if (st_open(&f, path, err)) return -1;
    int per = gpt_named_tensors(m, m->params, NULL);
    KilnNamedTensor *nt = calloc((size_t)per, sizeof *nt);
    if (!nt) {
        st_close(&f);
        return kiln_fail(err, "out of memory");
    }
    int rc = 0;
    for (int b = 0; b < nb && rc == 0; b++) {
        gpt_named_tensors(m, bufs[b].base, nt);
        for (int i = 0; i < per && rc == 0; i++) {
            char name[160];
            snprintf(name, sizeof name, "%s%s", bufs[b].prefix, nt[i].name);
            rc = st_read_f32(&f, name, nt[i].data, nt[i].ndim, nt[i].shape, err);
        }
    }
    free(nt);
    st_close(&f);
    return rc;
}

static int write_state(const char *path, const KilnConfig *cfg, const KilnTrainState *st,
                       KilnErr *err) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "step", st->step);
    cJSON_AddNumberToObject(j, "tokens_seen", (double)st->tokens_seen);
    cJSON *ld = cJSON_AddObjectToObject(j, "loader");
    cJSON_AddNumberToObject(ld, "shard", st->loader_shard);
    cJSON_AddNumberToObject(ld, "pos", (double)st->loader_pos);
    cJSON_AddNumberToObject(ld, "epoch", (double)st->loader_epoch);
    if (isfinite(st->val_loss)) cJSON_AddNumberToObject(j, "val_loss", st->val_loss);
    cJSON_AddStringToObject(j, "kiln_version", kiln_version());
    cJSON_AddStringToObject(j, "git_commit", kiln_git_commit());
    char *yaml = NULL;
    size_t ylen = 0;
    FILE *mf = open_memstream(&yaml, &ylen);
    if (!mf) {
        cJSON_Delete(j);
        return kiln_fail(err, "out of memory");
    }
    kiln_config_write_yaml(cfg, mf);
    fclose(mf);
    cJSON_AddStringToObject(j, "config", yaml);
    free(yaml);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return kiln_fail(err, "out of memory");
    KilnAtomicFile af;
    int rc = kiln_atomic_open(&af, path, err);
    if (rc == 0) {
        kiln_atomic_write(&af, text, strlen(text), err);
        kiln_atomic_write(&af, "\n", 1, err);
        rc = kiln_atomic_commit(&af, err);
    }
    free(text);
    return rc;
}

static int remove_tree(const char *dir) {
    // checkpoint directories hold only the files we write
    const char *files[] = {"model.safetensors", "optimizer.safetensors", "state.json",
                           "model.safetensors.tmp", "optimizer.safetensors.tmp", "state.json.tmp"};
    char p[1200];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    return rmdir(dir);
}

int checkpoint_save(const char *run_dir, const KilnConfig *cfg, const KilnModel *m,
                    const KilnTrainState *st, char *path, KilnErr *err) {
    if (kiln_mkdirs(run_dir, err)) return -1;
    char tmp[1100], final[1100], p[1200];
    snprintf(tmp, sizeof tmp, "%s/.ckpt-%08d.tmp", run_dir, st->step);
    snprintf(final, sizeof final, "%s/ckpt-%08d", run_dir, st->step);
    remove_tree(tmp);  // leftovers of a crash mid-write
    if (mkdir(tmp, 0755) != 0) return kiln_fail(err, "%s: cannot create: %s", tmp, strerror(errno));
    Buffer weights[] = {{m->params, ""}};
    Buffer moments[] = {{m->m, "exp_avg."}, {m->v, "exp_avg_sq."}};
    snprintf(p, sizeof p, "%s/model.safetensors", tmp);
    int rc = save_buffers(p, m, weights, 1, cfg, err);
    if (rc == 0) {
        snprintf(p, sizeof p, "%s/optimizer.safetensors", tmp);
        rc = save_buffers(p, m, moments, 2, cfg, err);
    }
    if (rc == 0) {
        snprintf(p, sizeof p, "%s/state.json", tmp);
        rc = write_state(p, cfg, st, err);
    }
    if (rc == 0) rc = kiln_fsync_dir(tmp, err);
    if (rc == 0) {
        struct stat sb;
        if (stat(final, &sb) == 0) {
            // same step written again (e.g. after a resume): replace it
            char old[1200];
            snprintf(old, sizeof old, "%s/.ckpt-%08d.old", run_dir, st->step);
            if (rename(final, old) == 0) remove_tree(old);
        }
        if (rename(tmp, final) != 0)
            rc = kiln_fail(err, "%s: rename failed: %s", final, strerror(errno));
    }
    if (rc != 0) {
        remove_tree(tmp);
        return kiln_wrap(err, "checkpoint step %d", st->step);
    }
    if (kiln_fsync_dir(run_dir, err)) return -1;
    // RUN/latest: the newest checkpoint's directory name
    snprintf(p, sizeof p, "%s/latest", run_dir);
    KilnAtomicFile af;
    if (kiln_atomic_open(&af, p, err)) return -1;
    char name[64];
    int nl = snprintf(name, sizeof name, "ckpt-%08d\n", st->step);
    kiln_atomic_write(&af, name, (size_t)nl, err);
    if (kiln_atomic_commit(&af, err)) return -1;
    if (path) snprintf(path, 1024, "%s", final);
    return 0;
}

int checkpoint_read_state(const char *ckpt_dir, KilnConfig *cfg, KilnTrainState *st, KilnErr *err) {
    char p[1200], *text;
    size_t len;
    snprintf(p, sizeof p, "%s/state.json", ckpt_dir);
    if (kiln_read_file(p, &text, &len, err)) return -1;
    int rc = checkpoint_parse_state(text, len, p, cfg, st, err);
    free(text);
    return rc;
}

int checkpoint_parse_state(const char *text, size_t len, const char *p, KilnConfig *cfg,
                           KilnTrainState *st, KilnErr *err) {
    cJSON *j = cJSON_ParseWithLength(text, len);
    if (!j) return kiln_fail(err, "%s: not valid JSON (truncated?)", p);
    cJSON *step = cJSON_GetObjectItemCaseSensitive(j, "step");
    cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "tokens_seen");
    cJSON *ld = cJSON_GetObjectItemCaseSensitive(j, "loader");
    cJSON *conf = cJSON_GetObjectItemCaseSensitive(j, "config");
    cJSON *vl = cJSON_GetObjectItemCaseSensitive(j, "val_loss");
    cJSON *ls = ld ? cJSON_GetObjectItemCaseSensitive(ld, "shard") : NULL;
    cJSON *lp = ld ? cJSON_GetObjectItemCaseSensitive(ld, "pos") : NULL;
    cJSON *le = ld ? cJSON_GetObjectItemCaseSensitive(ld, "epoch") : NULL;
    // whole numbers in range, so the conversions below are exact
#define WHOLE(x, hi) (cJSON_IsNumber(x) && (x)->valuedouble >= 0 && (x)->valuedouble <= (hi) && \
                      (x)->valuedouble == floor((x)->valuedouble))
    if (!WHOLE(step, 2147483647.0) || !WHOLE(tok, 9e15) || !WHOLE(ls, 2147483647.0) ||
        !WHOLE(lp, 9e15) || !WHOLE(le, 9e15) || !cJSON_IsString(conf)) {
        cJSON_Delete(j);
        return kiln_fail(err, "%s: missing or malformed step, tokens_seen, loader or config", p);
    }
#undef WHOLE
    memset(st, 0, sizeof *st);
    st->step = (int)step->valuedouble;
    st->tokens_seen = (long long)tok->valuedouble;
    st->loader_shard = (int)ls->valuedouble;
    st->loader_pos = (long)lp->valuedouble;
    st->loader_epoch = (long)le->valuedouble;
    st->val_loss = cJSON_IsNumber(vl) ? (float)vl->valuedouble : NAN;
    kiln_config_defaults(cfg);
    char origin[1300];
    snprintf(origin, sizeof origin, "%s (config)", p);
    int rc = kiln_config_load_yaml_string(cfg, conf->valuestring, strlen(conf->valuestring), origin, err);
    cJSON_Delete(j);
    if (rc == 0) rc = kiln_config_finalize(cfg, err);
    return rc;
}

int checkpoint_load(const char *ckpt_dir, KilnModel *m, int with_optimizer, KilnErr *err) {
    char p[1200];
    Buffer weights[] = {{m->params, ""}};
    Buffer moments[] = {{m->m, "exp_avg."}, {m->v, "exp_avg_sq."}};
    snprintf(p, sizeof p, "%s/model.safetensors", ckpt_dir);
    if (load_buffers(p, m, weights, 1, err)) return -1;
    if (with_optimizer) {
        snprintf(p, sizeof p, "%s/optimizer.safetensors", ckpt_dir);
        if (load_buffers(p, m, moments, 2, err)) return -1;
    }
    return 0;
}

int checkpoint_latest(const char *run_dir, char *path, size_t n, KilnErr *err) {
    char p[1200], *text;
    size_t len;
    snprintf(p, sizeof p, "%s/latest", run_dir);
    if (access(p, F_OK) != 0) return kiln_fail(err, "%s: no checkpoint in this run directory", run_dir);
    if (kiln_read_file(p, &text, &len, err)) return -1;
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' ')) text[--len] = 0;
    if (!len || strchr(text, '/')) {
        free(text);
        return kiln_fail(err, "%s: malformed", p);
    }
    snprintf(path, n, "%s/%s", run_dir, text);
    free(text);
    return 0;
}
