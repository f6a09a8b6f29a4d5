// svg_plot.c: small line charts as inline SVG for `kiln report`: nice 1-2-5
// ticks (linear and log), min/max-per-pixel downsampling, event markers with
// tooltips. Text only; the page's CSS styles it.
#include "kiln/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TICKS 16
#define DOWNSAMPLE_OVER 2000  // points; longer series go min/max per pixel column
#define MAX_DOTS 400          // sparse series get a dot (with a tooltip) per point up to this
#define MAX_MARKERS 400       // markers drawn per chart
#define SMOOTH_FROM 50        // points; shorter series are drawn as they are

// A nice spacing near raw: 1, 2 or 5 times a power of ten, not below raw.
static double nice_step(double raw) {
    double p = pow(10.0, floor(log10(raw)));
    double m = raw / p;
    return (m <= 1.0 ? 1.0 : m <= 2.0 ? 2.0 : m <= 5.0 ? 5.0 : 10.0) * p;
}

int svg_ticks(double lo, double hi, int max_ticks, double *ticks, double *step) {
    *step = 0;
    if (!isfinite(lo) || !isfinite(hi) || !(hi > lo) || max_ticks < 2) return 0;
    if (max_ticks > MAX_TICKS) max_ticks = MAX_TICKS;
    double s = nice_step((hi - lo) / (max_ticks - 1));
    if (!isfinite(s) || s <= 0) return 0;
    int n = 0;
    for (double k = ceil(lo / s - 1e-9); n < max_ticks; k++) {
        double v = k * s;
        if (v > hi + s * 1e-9) break;
        if (fabs(v) < s * 1e-9) v = 0;  // no "-0" or 1e-17 from rounding
        ticks[n++] = v;
    }
    *step = s;
    return n;
}

int svg_ticks_log(double lo, double hi, int max_ticks, double *ticks, double *steps) {
    if (!isfinite(lo) || !isfinite(hi) || !(lo > 0) || !(hi > lo) || max_ticks < 2) return 0;
    if (max_ticks > MAX_TICKS) max_ticks = MAX_TICKS;
    int e0 = (int)floor(log10(lo)), e1 = (int)ceil(log10(hi));
    int decades = 0;
    for (int e = e0; e <= e1; e++) decades += pow(10.0, e) >= lo && pow(10.0, e) <= hi;
    if (decades >= 3) {  // every k-th decade, so that at most max_ticks remain
        int every = (decades + max_ticks - 1) / max_ticks, n = 0;
        for (int e = e0; e <= e1 && n < max_ticks; e++) {
            double v = pow(10.0, e);
            if (v < lo || v > hi || e % every) continue;
            ticks[n] = v, steps[n] = v, n++;
        }
        if (n >= 2) return n;
    }
    static const double mult[3] = {1, 2, 5};
    int n = 0;
    for (int e = e0; e <= e1; e++)
        for (int m = 0; m < 3; m++) {
            double v = mult[m] * pow(10.0, e);
            if (v >= lo && v <= hi && n < MAX_TICKS) ticks[n] = v, steps[n] = v, n++;
        }
    if (n >= 3 && n <= max_ticks) return n;
    // less than a decade (or too many): plain ticks, placed on the log axis
    double s;
    n = svg_ticks(lo, hi, max_ticks, ticks, &s);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (ticks[i] > 0) ticks[k] = ticks[i], steps[k] = s, k++;
    return k;
}

// Drops trailing zeros after a decimal point: "1.50" -> "1.5", "2.0" -> "2".
static void strip_zeros(char *s) {
    if (!strchr(s, '.')) return;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '0') s[--n] = 0;
    if (n > 0 && s[n - 1] == '.') s[--n] = 0;
}

// Decimals that show a spacing of `step` units.
static int decimals_for(double step) {
    if (!(step > 0) || !isfinite(step)) return 3;
    int d = (int)ceil(-log10(step) - 1e-9);
    return d < 0 ? 0 : d > 6 ? 6 : d;
}

void svg_format_tick(char *buf, size_t n, double v, double step) {
    step = fabs(step);
    if (!isfinite(v)) {
        snprintf(buf, n, "%s", isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf");
        return;
    }
    if (v == 0 || (step > 0 && fabs(v) < step * 1e-9)) {
        snprintf(buf, n, "0");
        return;
    }
    double a = fabs(v);
    static const char *const suffix[] = {"k", "M", "G", "T", "P"};
    if (a >= 1e3 && a < 1e18) {
        int u = (int)floor(log10(a) / 3) - 1;  // 0: k, 1: M, ...
        if (u > 4) u = 4;
        double unit = pow(1e3, u + 1);
        snprintf(buf, n, "%.*f", decimals_for(step / unit), v / unit);
        strip_zeros(buf);
        size_t l = strlen(buf);
        snprintf(buf + l, n > l ? n - l : 0, "%s", suffix[u]);
    } else if (a < 1e-3 || a >= 1e18) {
        int e = (int)floor(log10(a));
        double m = v / pow(10.0, e);
        int d = decimals_for(step / pow(10.0, e));
        if (d > 3) d = 3;
        char mant[64];
        snprintf(mant, sizeof mant, "%.*f", d, m);
        if (fabs(atof(mant)) >= 10) snprintf(mant, sizeof mant, "%.*f", d, m / 10), e++;
        strip_zeros(mant);
        snprintf(buf, n, "%se%d", mant, e);
    } else {
        snprintf(buf, n, "%.*f", decimals_for(step), v);
        strip_zeros(buf);
    }
}

size_t svg_downsample(const double *x, const double *y, size_t n, double x0, double x1, int buckets, double *ox,
                      double *oy) {
    if (buckets < 1 || !(x1 > x0)) return 0;
    size_t out = 0, i = 0;
    while (i < n) {
        if (!(x[i] >= x0 && x[i] <= x1)) {  // outside the range (or NaN x)
            i++;
            continue;
        }
        int b = (int)((x[i] - x0) / (x1 - x0) * buckets);
        if (b >= buckets) b = buckets - 1;
        size_t lo = (size_t)-1, hi = (size_t)-1;
        for (; i < n && x[i] >= x0 && x[i] <= x1; i++) {
            int bi = (int)((x[i] - x0) / (x1 - x0) * buckets);
            if (bi >= buckets) bi = buckets - 1;
            if (bi != b) break;
            if (isnan(y[i])) continue;
            if (lo == (size_t)-1 || y[i] < y[lo]) lo = i;
            if (hi == (size_t)-1 || y[i] > y[hi]) hi = i;
        }
        if (lo == (size_t)-1) {
            if (out == 0 || !isnan(oy[out - 1])) ox[out] = x0 + (b + 0.5) * (x1 - x0) / buckets, oy[out++] = NAN;
            continue;
        }
        size_t first = lo < hi ? lo : hi, second = lo < hi ? hi : lo;
        ox[out] = x[first], oy[out++] = y[first];
        if (second != first) ox[out] = x[second], oy[out++] = y[second];
    }
    return out;
}

void svg_ema(const double *y, size_t n, double window, double *out) {
    double a = window > 1 ? 1 - exp(-1 / window) : 1, m = 0, w = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i])) {
            out[i] = NAN;
            continue;
        }
        m = (1 - a) * m + a * y[i];
        w = (1 - a) * w + a;  // the weight the zero start still lacks: divide it out
        out[i] = m / w;
    }
}

// ---------------------------------------------------------------- drawing
typedef struct {
    double L, T, W, H;  // plot area in viewBox units
    double x0, x1;      // data x range
    double lo, hi;      // y range (log10 of it for a log axis)
    int log_y;
} Frame;

static double fx(const Frame *f, double x) {
    double p = f->L + (x - f->x0) / (f->x1 - f->x0) * f->W;
    return p < -1e4 ? -1e4 : p > 1e4 ? 1e4 : p;
}

// NaN for a value the axis cannot show (NaN, or not positive on a log axis).
static double fy(const Frame *f, double y) {
    if (!isfinite(y) || (f->log_y && !(y > 0))) return NAN;
    double t = f->log_y ? log10(y) : y;
    double p = f->T + f->H - (t - f->lo) / (f->hi - f->lo) * f->H;
    return p < -1e4 ? -1e4 : p > 1e4 ? 1e4 : p;
}

// The y range of every showable value (log10 for a log axis); 0 when there is none.
static int y_range(const SvgChart *c, double *lo, double *hi) {
    int any = 0;
    for (int s = 0; s < c->nseries; s++)
        for (size_t i = 0; i < c->series[s].n; i++) {
            double v = c->series[s].y[i], x = c->series[s].x[i];
            if (!isfinite(v) || (c->log_y && !(v > 0)) || !(x >= c->x_min && x <= c->x_max)) continue;
            if (c->log_y) v = log10(v);
            if (fabs(v) > 1e300) v = v > 0 ? 1e300 : -1e300;  // keep hi - lo finite
            if (!any || v < *lo) *lo = v;
            if (!any || v > *hi) *hi = v;
            any = 1;
            // the band and the reference line are in view too: noise is seen as noise
            double bw = c->series[s].band ? c->series[s].band[i] : NAN;
            if (isfinite(bw) && !c->log_y) {
                if (v - bw < *lo) *lo = v - bw;
                if (v + bw > *hi) *hi = v + bw;
            }
        }
    if (any && c->has_ref && isfinite(c->ref_y) && (!c->log_y || c->ref_y > 0)) {
        double v = c->log_y ? log10(c->ref_y) : c->ref_y;
        if (v < *lo) *lo = v;
        if (v > *hi) *hi = v;
    }
    return any;
}

// The band y +- band[i] as one filled path per run of points that have both.
static int draw_band(KilnBuf *b, const Frame *f, const SvgSeries *s, int clip_id) {
    int rc = 0;
    size_t i = 0;
    while (i < s->n) {
        while (i < s->n && !(isfinite(s->y[i]) && isfinite(s->band[i]))) i++;
        size_t j = i;
        while (j < s->n && isfinite(s->y[j]) && isfinite(s->band[j])) j++;
        if (j == i) break;
        rc |= kbuf_printf(b, "<path clip-path=\"url(#c%d)\" class=\"band\" fill=\"%s\" fill-opacity=\".15\" d=\"",
                          clip_id, s->color);
        for (size_t k = i; k < j; k++)  // upper edge forwards, lower edge back
            rc |= kbuf_printf(b, "%c%.1f,%.1f", k == i ? 'M' : 'L', fx(f, s->x[k]), fy(f, s->y[k] + s->band[k]));
        if (j - i == 1)  // a lone point: a short vertical bar
            rc |= kbuf_printf(b, "h3h-6h3");
        for (size_t k = j; k-- > i;) rc |= kbuf_printf(b, "L%.1f,%.1f", fx(f, s->x[k]), fy(f, s->y[k] - s->band[k]));
        rc |= kbuf_puts(b, "Z\"/>");
        i = j;
    }
    return rc ? -1 : 0;
}

static int draw_ref(KilnBuf *b, const Frame *f, const SvgChart *c) {
    double py = fy(f, c->ref_y);
    if (isnan(py)) return 0;
    const char *t = c->ref_label ? c->ref_label : "";
    int rc = kbuf_puts(b, "<g class=\"ref\"><title>");
    rc |= html_escape(b, t, strlen(t));
    rc |= kbuf_printf(b, "</title><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#868e96\" "
                         "stroke-width=\"1.2\" stroke-dasharray=\"6 4\"/><text class=\"tick\" x=\"%.1f\" "
                         "y=\"%.1f\" text-anchor=\"end\">",
                      f->L, f->L + f->W, py, py, f->L + f->W - 4, py - 4);
    rc |= html_escape(b, t, strlen(t));
    rc |= kbuf_puts(b, "</text></g>");
    return rc ? -1 : 0;
}

static void pad_range(Frame *f, int nonneg) {
    double span = f->hi - f->lo;
    if (!(span > 0)) {
        double d = f->log_y ? 0.1 : fabs(f->lo) > 0 ? fabs(f->lo) * 0.1 : 1.0;
        f->lo -= d, f->hi += d;
        if (nonneg && !f->log_y && f->lo < 0 && f->hi > 0) f->lo = 0;
        return;
    }
    double pad = span * 0.06;
    if (nonneg && !f->log_y && f->lo >= 0 && f->lo - pad < 0) f->lo = 0;
    else f->lo -= pad;
    f->hi += pad;
}

static int draw_axes(KilnBuf *b, const Frame *f, int height) {
    double yt[MAX_TICKS], ys[MAX_TICKS], xt[MAX_TICKS], xs;
    int ny;
    if (f->log_y) {
        ny = svg_ticks_log(pow(10.0, f->lo), pow(10.0, f->hi), 6, yt, ys);
    } else {
        double s;
        ny = svg_ticks(f->lo, f->hi, 6, yt, &s);
        for (int i = 0; i < ny; i++) ys[i] = s;
    }
    int nx = svg_ticks(f->x0, f->x1, 7, xt, &xs);
    char label[64];
    int rc = 0;
    for (int i = 0; i < ny; i++) {
        double py = fy(f, yt[i]);
        if (isnan(py)) continue;
        svg_format_tick(label, sizeof label, yt[i], ys[i]);
        rc |= kbuf_printf(b, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", f->L,
                          f->L + f->W, py, py);
        rc |= kbuf_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" dy=\".32em\" text-anchor=\"end\">%s</text>",
                          f->L - 6, py, label);
    }
    for (int i = 0; i < nx; i++) {
        double px = fx(f, xt[i]);
        svg_format_tick(label, sizeof label, xt[i], xs);
        rc |= kbuf_printf(b, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", px, px, f->T,
                          f->T + f->H);
        rc |= kbuf_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>", px,
                          height - 6, label);
    }
    rc |= kbuf_printf(b, "<line class=\"axis\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", f->L, f->L + f->W,
                      f->T + f->H, f->T + f->H);
    return rc ? -1 : 0;
}

// The line through x, y (downsampled first when long); NaN breaks it, and a
// point alone between breaks is drawn as a dot ("h0" with round caps).
static int draw_line(KilnBuf *b, const Frame *f, const SvgSeries *s, const double *y, const char *cls,
                     int clip_id) {
    const double *x = s->x;
    size_t n = s->n;
    double *ox = NULL, *oy = NULL;
    if (n > DOWNSAMPLE_OVER) {
        int buckets = (int)f->W;
        ox = malloc(2 * (size_t)buckets * sizeof *ox);
        oy = malloc(2 * (size_t)buckets * sizeof *oy);
        if (!ox || !oy) {
            free(ox), free(oy);
            return -1;
        }
        n = svg_downsample(x, y, n, f->x0, f->x1, buckets, ox, oy);
        x = ox, y = oy;
    }
    int rc = kbuf_printf(b, "<path clip-path=\"url(#c%d)\" class=\"%s\" stroke=\"%s\" d=\"", clip_id, cls, s->color);
    int seg = 0;  // points in the current piece
    for (size_t i = 0; i < n; i++) {
        double py = fy(f, y[i]);
        if (isnan(py)) {
            if (seg == 1) rc |= kbuf_puts(b, "h0");
            seg = 0;
            continue;
        }
        rc |= kbuf_printf(b, "%c%.1f,%.1f", seg ? 'L' : 'M', fx(f, x[i]), py);
        seg++;
    }
    if (seg == 1) rc |= kbuf_puts(b, "h0");
    rc |= kbuf_puts(b, "\"/>");
    free(ox), free(oy);
    return rc ? -1 : 0;
}

static int draw_dots(KilnBuf *b, const Frame *f, const SvgSeries *s) {
    int rc = 0;
    char vx[64], vy[64];
    for (size_t i = 0; i < s->n && i < MAX_DOTS; i++) {
        double py = fy(f, s->y[i]);
        if (isnan(py) || !(s->x[i] >= f->x0 && s->x[i] <= f->x1)) continue;
        snprintf(vx, sizeof vx, "%.0f", s->x[i]);
        snprintf(vy, sizeof vy, "%.6g", s->y[i]);
        rc |= kbuf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>", fx(f, s->x[i]), py,
                          s->color);
        rc |= html_escape(b, s->label ? s->label : "", s->label ? strlen(s->label) : 0);
        rc |= kbuf_printf(b, " %s at step %s</title></circle>", vy, vx);
    }
    return rc ? -1 : 0;
}

static int draw_markers(KilnBuf *b, const Frame *f, const SvgMarker *m, int n) {
    int rc = 0, drawn = 0;
    double bottom = f->T + f->H;
    for (int i = 0; i < n && drawn < MAX_MARKERS; i++) {
        if (!(m[i].x >= f->x0 && m[i].x <= f->x1)) continue;
        double px = fx(f, m[i].x);
        rc |= kbuf_puts(b, "<g class=\"ev\"><title>");
        rc |= html_escape(b, m[i].title ? m[i].title : "", m[i].title ? strlen(m[i].title) : 0);
        rc |= kbuf_puts(b, "</title>");
        if (m[i].minor) {
            rc |= kbuf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                                 "stroke-width=\"1.5\"/>",
                              px, px, bottom - 7, bottom, m[i].color);
        } else {
            rc |= kbuf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                                 "stroke-width=\"1.2\" stroke-dasharray=\"4 3\"/>"
                                 "<path d=\"M%.1f,%.1fh9l-4.5,6z\" fill=\"%s\"/>",
                              px, px, f->T, bottom, m[i].color, px - 4.5, f->T, m[i].color);
        }
        // a wide invisible line so the tooltip is easy to hit
        rc |= kbuf_printf(b, "<line class=\"hit\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/></g>", px, px,
                          m[i].minor ? bottom - 7 : f->T, bottom);
        drawn++;
    }
    return rc ? -1 : 0;
}

int svg_chart(KilnBuf *out, const SvgChart *c) {
    int width = c->width > 0 ? c->width : 560, height = c->height > 0 ? c->height : 240;
    Frame f = {.L = 54, .T = 10, .x0 = c->x_min, .x1 = c->x_max, .log_y = c->log_y};
    f.W = width - f.L - 14;
    f.H = height - f.T - 26;
    if (!(f.x1 > f.x0) || !isfinite(f.x1 - f.x0)) f.x0 = isfinite(c->x_min) ? c->x_min - 1 : 0, f.x1 = f.x0 + 2;
    int rc = kbuf_printf(out, "<svg viewBox=\"0 0 %d %d\" role=\"img\"%s%s%s>", width, height,
                         c->css_class ? " class=\"" : "", c->css_class ? c->css_class : "", c->css_class ? "\"" : "");
    rc |= kbuf_printf(out, "<clipPath id=\"c%d\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/></clipPath>",
                      c->id, f.L, f.T - 2, f.W, f.H + 4);
    if (!y_range(c, &f.lo, &f.hi)) {
        f.lo = 0, f.hi = 1;
        rc |= draw_axes(out, &(Frame){.L = f.L, .T = f.T, .W = f.W, .H = f.H, .x0 = f.x0, .x1 = f.x1, .lo = 0, .hi = 1},
                        height);
        rc |= kbuf_printf(out, "<text class=\"nodata\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no %sdata</text>",
                          f.L + f.W / 2, f.T + f.H / 2, c->log_y ? "positive " : "");
        rc |= kbuf_puts(out, "</svg>");
        return rc ? -1 : 0;
    }
    int nonneg = 1;
    for (int s = 0; s < c->nseries && nonneg; s++)
        for (size_t i = 0; i < c->series[s].n; i++)
            if (c->series[s].y[i] < 0) nonneg = 0;
    pad_range(&f, nonneg);
    rc |= draw_axes(out, &f, height);
    rc |= draw_markers(out, &f, c->markers, c->nmarkers);
    if (c->has_ref) rc |= draw_ref(out, &f, c);
    for (int s = 0; s < c->nseries; s++)
        if (c->series[s].band) rc |= draw_band(out, &f, &c->series[s], c->id);
    for (int s = 0; s < c->nseries; s++) {
        const SvgSeries *ss = &c->series[s];
        if (ss->smooth && ss->n >= SMOOTH_FROM) {
            double *sm = malloc(ss->n * sizeof *sm);
            if (!sm) return -1;
            svg_ema(ss->y, ss->n, (double)ss->n / 150, sm);
            rc |= draw_line(out, &f, ss, ss->y, "line raw", c->id);
            rc |= draw_line(out, &f, ss, sm, "line", c->id);
            free(sm);
        } else {
            rc |= draw_line(out, &f, ss, ss->y, "line", c->id);
        }
        if (c->series[s].dots) rc |= draw_dots(out, &f, &c->series[s]);
    }
    rc |= kbuf_puts(out, "</svg>");
    return rc ? -1 : 0;
}
