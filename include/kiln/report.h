// report.h: `kiln report RUN`: one self-contained HTML page about a training run
// (no scripts, fonts, images or stylesheets from anywhere else), from
//   RUN/metrics.jsonl    step, val and event records (track.h)
//   RUN/incidents.jsonl  supervisor restarts, shown with the events (optional)
//   RUN/config.yaml, RUN/env.json, RUN/trainer.pid, RUN/heartbeat
// Charts are inline SVG drawn here (svg_plot.c): one small multiple per series,
// events as vertical markers with tooltips, long series reduced to min/max per
// pixel column so spikes stay visible.
#ifndef KILN_REPORT_H
#define KILN_REPORT_H

#include "kiln/core.h"

#include <stddef.h>

// Appends the page for run_dir to out. A missing or empty metrics.jsonl gives a
// page that says so; a malformed line is an error naming "file:line" (a partial
// last line without its newline is a record still being written: skipped).
int report_render(const char *run_dir, KilnBuf *out, KilnErr *err);
// report_render, then the page written atomically to path, or to stdout for "-".
// *bad_input (may be NULL) is set to 1 when the failure was the run's files
// (malformed or unreadable), 0 when it was writing the page.
int report_write(const char *run_dir, const char *path, int *bad_input, KilnErr *err);

// Appends s[0..n) as HTML text or attribute value: & < > " ' escaped; invalid
// UTF-8 and control characters other than tab and newline become U+FFFD.
int html_escape(KilnBuf *b, const char *s, size_t n);

// ---------------------------------------------------------------- SVG charts
typedef struct {
    const char *color;     // CSS colour of the line
    const double *x, *y;   // n points, x ascending; NaN y breaks the line
    size_t n;
    int dots;              // also a dot per point, with a <title> (sparse series: val loss)
    int smooth;            // long noisy series: the raw line faint, a moving average over it
    const char *label;     // for dot tooltips: "val_loss"
    const double *band;    // n half-widths (a standard error): a shaded band y +- band; NULL: none
} SvgSeries;

typedef struct {
    double x;
    const char *color;
    const char *title;     // tooltip text (plain, escaped when written)
    int minor;             // a short tick on the x axis instead of a full-height line (checkpoints)
} SvgMarker;

typedef struct {
    int id;                // unique on the page: names the clip path
    int width, height;     // viewBox size; the page scales it to its column
    int log_y;
    double x_min, x_max;   // shared by all charts so that they line up
    const SvgSeries *series;
    int nseries;
    const SvgMarker *markers;
    int nmarkers;
    const char *css_class; // on the <svg> element, or NULL
    int has_ref;           // a dashed horizontal reference line at ref_y (a benchmark's chance level)
    double ref_y;
    const char *ref_label; // its tooltip and label: "chance 0.25"
} SvgChart;

// Appends one <svg> element. Without a finite value (positive, for log_y) the
// chart says "no data". -1 only when out of memory.
int svg_chart(KilnBuf *out, const SvgChart *c);

// Up to max_ticks "nice" values (1, 2 or 5 times a power of ten apart) inside
// [lo, hi] into ticks; *step gets the spacing. Returns the count (0 when the
// range is not finite).
int svg_ticks(double lo, double hi, int max_ticks, double *ticks, double *step);
// Ticks for a log axis over [lo, hi] (lo > 0): decades, else 1-2-5 multiples,
// else svg_ticks; step[i] is what svg_format_tick should get for ticks[i].
int svg_ticks_log(double lo, double hi, int max_ticks, double *ticks, double *steps);
// A short label for an axis value given the tick spacing: "0", "0.25", "1.5k",
// "12M", "6e-4".
void svg_format_tick(char *buf, size_t n, double v, double step);

// Debiased exponential moving average of y[0..n) into out, over about `window`
// points; NaN values stay NaN (gaps) and do not enter the average.
void svg_ema(const double *y, size_t n, double window, double *out);

// Min/max per bucket: the points of x[0..n) (ascending) in [x0, x1] go to
// `buckets` equal columns; each column keeps its lowest and highest finite
// point in their original order, and a column with no finite value (but some
// points) becomes one NaN (a gap). ox, oy need 2*buckets entries. Returns the
// count written.
size_t svg_downsample(const double *x, const double *y, size_t n, double x0, double x1, int buckets, double *ox,
                      double *oy);

#endif
