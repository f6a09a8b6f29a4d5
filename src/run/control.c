// control.c: the live-control file (see control.h).
#include "run/control.h"

#include "core/parse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// Trims spaces and tabs at both ends of s[0..*n), returning the new start.
static const char *trim(const char *s, size_t *n) {
    while (*n && (*s == ' ' || *s == '\t')) s++, (*n)--;
    while (*n && (s[*n - 1] == ' ' || s[*n - 1] == '\t' || s[*n - 1] == '\r')) (*n)--;
    return s;
}

// "now", or any spelling of true.
static int is_now(const char *v) {
    int yes = 0;
    return !strcmp(v, "now") || (!kiln_parse_bool(v, &yes) && yes);
}

// One `key: value`; the typed keys go through the config table so that names,
// types and ranges are checked exactly as in a config file.
static int apply_line(KilnControl *c, KilnConfig *scratch, const char *key, const char *val,
                      const char *origin, KilnErr *err) {
    if (!strcmp(key, "lr_mult")) {
        float v;
        if (kiln_parse_float(val, &v) || !isfinite(v) || v <= 0 || v > 1000)
            return kiln_fail(err, "%s: lr_mult wants a number in (0, 1000], got '%s'", origin, val);
        c->set_lr_mult = 1;
        c->lr_mult = v;
        return 0;
    }
    if (!strcmp(key, "checkpoint") || !strcmp(key, "eval") || !strcmp(key, "stop")) {
        if (!is_now(val)) return kiln_fail(err, "%s: %s wants 'now', got '%s'", origin, key, val);
        *(key[0] == 'c' ? &c->checkpoint_now : key[0] == 'e' ? &c->eval_now : &c->stop) = 1;
        return 0;
    }
    static const struct {
        const char *name, *config_key;
    } typed[] = {{"weight_decay", "train.weight_decay"},
                 {"grad_clip", "train.grad_clip"},
                 {"optimizer", "train.optimizer"},
                 {"activation", "model.act"}};
    for (size_t i = 0; i < sizeof typed / sizeof typed[0]; i++) {
        if (strcmp(key, typed[i].name)) continue;
        if (kiln_config_set(scratch, typed[i].config_key, val, origin, err)) return -1;
        switch (i) {
        case 0:
            // lr * weight_decay past 1 flips the weights' sign each step; NaN fails every comparison
            if (!(scratch->train.weight_decay >= 0 && scratch->train.weight_decay <= KILN_CONTROL_MAX_WD))
                return kiln_fail(err, "%s: weight_decay must not be negative, nor above %g (got '%s')", origin,
                                 (double)KILN_CONTROL_MAX_WD, val);
            c->set_weight_decay = 1;
            c->weight_decay = scratch->train.weight_decay;
            break;
        case 1:
            if (!(scratch->train.grad_clip >= 0 && scratch->train.grad_clip <= KILN_CONTROL_MAX_CLIP))
                return kiln_fail(err, "%s: grad_clip must not be negative, nor above %g (0: off; got '%s')", origin,
                                 (double)KILN_CONTROL_MAX_CLIP, val);
            c->set_grad_clip = 1;
            c->grad_clip = scratch->train.grad_clip;
            break;
        case 2:
            c->set_optimizer = 1;
            c->optimizer = (int)scratch->train.optimizer;
            break;
        default:
            if (scratch->model.act == KILN_ACT_SWIGLU)
                return kiln_fail(err, "%s: activation swiglu changes the parameter shapes; only gelu, gelu_erf and relu can be swapped live", origin);
            c->set_act = 1;
            c->act = scratch->model.act;
            break;
        }
        return 0;
    }
    return kiln_fail(err, "%s: unknown control key '%s' (known: lr_mult, weight_decay, grad_clip, optimizer, activation, checkpoint, eval, stop)",
                     origin, key);
}

int control_parse(const char *text, size_t len, const char *name, KilnControl *c, KilnErr *err) {
    memset(c, 0, sizeof *c);
    KilnConfig scratch;
    kiln_config_defaults(&scratch);
    int lineno = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
        const char *line = text + at;
        at += n + 1;
        lineno++;
        const char *hash = memchr(line, '#', n);
        if (hash) n = (size_t)(hash - line);
        line = trim(line, &n);
        if (!n) continue;
        char origin[1200];
        snprintf(origin, sizeof origin, "%s:%d", name, lineno);
        if (memchr(line, 0, n)) return kiln_fail(err, "%s: NUL byte in the line", origin);
        const char *colon = memchr(line, ':', n);
        if (!colon) return kiln_fail(err, "%s: expected 'key: value'", origin);
        size_t kn = (size_t)(colon - line), vn = n - kn - 1;
        const char *k = trim(line, &kn), *v = trim(colon + 1, &vn);
        char key[64], val[256];
        if (!kn || kn >= sizeof key || !vn || vn >= sizeof val)
            return kiln_fail(err, "%s: expected 'key: value' with a short key and a value", origin);
        memcpy(key, k, kn);
        key[kn] = 0;
        memcpy(val, v, vn);
        val[vn] = 0;
        if (apply_line(c, &scratch, key, val, origin, err)) return -1;
    }
    return 0;
}
