// task_internal.h: the parts behind kiln/task.h, shared by src/eval/task*.c,
// template.c, dataset.c and answer.c: prompt templates, dataset readers
// (records are cJSON objects) and answer extraction / exact match as
// lm-evaluation-harness does them. Task files are read as core/yaml.h trees.
#ifndef KILN_TASK_INTERNAL_H
#define KILN_TASK_INTERNAL_H

#include "kiln/core.h"
#include "kiln/task.h"
#include "core/yaml.h"

#include <cjson/cJSON.h>
#include <stddef.h>

// ---------------------------------------------------------------- templates
// "literal {field.path|filter|filter} literal": {{ and }} are literal braces.
// A value renders as its text: strings as they are, integral numbers as
// integers, true/false as True/False (as Jinja renders Python values).
typedef enum {
    TF_CAPITALIZE,      // Python str.capitalize: first character title case, the rest lower case
    TF_STRIP,           // Python str.strip(): Unicode whitespace at both ends
    TF_LOWER,           // Python str.lower()
    TF_UPPER,           // Python str.upper()
    TF_DROP_LAST_WORD,  // " ".join(s.split(" ")[:-1])
    TF_LAST_WORD,       // s.split(" ")[-1]
    TF_HELLASWAG,       // lm-evaluation-harness hellaswag preprocess()
    TF_WIKITEXT,        // lm-evaluation-harness wikitext_detokenizer()
    TF_DROP_CALCULATOR, // GSM8K answers without their calculator annotations <<...>>
    TF_COUNT
} TplFilter;
#define TPL_MAX_FILTERS 8

typedef struct {
    char **path;  // field names / list indices from the record
    int npath;
    unsigned char filters[TPL_MAX_FILTERS];
    int nfilters;
} TplExpr;

typedef struct Template Template;

// Parses src (NUL-terminated); on error why gets the reason (and -1 is returned).
int tpl_parse(const char *src, Template **t, char *why, size_t whylen);
// Adds filters applied to the whole rendered text (after the parts), by name.
int tpl_add_post_filter(Template *t, const char *name, char *why, size_t whylen);
void tpl_free(Template *t);
// Renders against record rec (index = its 0-based record index, the field
// _index) into out (cleared first). -1 with why when a field is missing or is
// not a scalar.
int tpl_render(const Template *t, const cJSON *rec, long index, KilnBuf *out, char *why, size_t whylen);

// "field.path|filter..." alone (the list-valued choices).
int tpl_expr_parse(const char *src, TplExpr *e, char *why, size_t whylen);
void tpl_expr_free(TplExpr *e);
const cJSON *tpl_lookup(const TplExpr *e, const cJSON *rec);  // NULL when absent
// A scalar value's text, then e's filters, into out (cleared first).
int tpl_render_value(const TplExpr *e, const cJSON *v, long index, KilnBuf *out, char *why, size_t whylen);

int tpl_filter_by_name(const char *name, size_t n);  // TplFilter or -1
const char *tpl_filter_name(int f);
// Applies filter f to b in place; -1 when out of memory.
int tpl_filter_apply(int f, KilnBuf *b);

// ---------------------------------------------------------------- datasets
typedef enum { DS_JSONL, DS_CSV, DS_LINES, DS_TEXT } DsFormat;
typedef enum { DS_SPLIT_NONE, DS_SPLIT_WIKITEXT } DsSplit;

typedef struct {
    const char *path;
    DsFormat format;
    DsSplit split;           // DS_TEXT: one record, or lm-eval's wikitext pages
    const char *label_file;  // NULL, or one label a line, aligned with the records
} DsSpec;

// Called for each record: rec (owned by the reader; valid during the call),
// its 0-based index among the file's records (blank lines are not records) and
// the line it starts on. Returning -1 stops the read with err set; returning
// 1 counts the record as skipped (a bad record under skip_bad).
typedef int (*DsRecordFn)(void *ctx, const cJSON *rec, long index, long line, KilnErr *err);

// Reads the records of spec. A record that does not parse is an error naming
// path:line, or with skip_bad a counted skip (*skipped). Structural faults (a
// file that cannot be read, a label file of another length, an unterminated
// CSV quote) are always errors. *nrecords gets the number of records (bad ones
// included: they keep their index).
int ds_read(const DsSpec *spec, int skip_bad, DsRecordFn fn, void *ctx, long *nrecords, long *skipped, KilnErr *err);

// The records of an RFC 4180 CSV text, for tests and ds_read: calls fn with an
// object {column: value} per record. Exposed for fuzzing.
int ds_read_csv_text(const char *data, size_t len, const char *name, int skip_bad, DsRecordFn fn, void *ctx,
                     long *nrecords, long *skipped, KilnErr *err);

// ---------------------------------------------------------------- answers
typedef struct AnsRegex AnsRegex;
// Compiles a Python-style pattern (PCRE2, UTF + Unicode properties, "\n" as
// the only newline); on error why gets PCRE2's message and offset.
AnsRegex *ans_regex_new(const char *pattern, char *why, size_t whylen);
void ans_regex_free(AnsRegex *r);
// Python re.findall(...)[group_select] with RegexFilter's rules: with capture
// groups, the first non-empty group of the match (one group: that group);
// stripped of whitespace. NULL when there are no matches or the index is out
// of range (the caller substitutes its fallback); "" stays "".
char *ans_regex_select(const AnsRegex *r, const char *s, int group_select);
// Python re.sub(pattern, "", s): every match removed. malloc'd, NULL when out of memory.
char *ans_regex_remove(const AnsRegex *r, const char *s);
// re.sub(pattern, repl, s) where repl may hold \1 (group references, as the
// wikitext detokenizer uses), into out (cleared first).
int ans_regex_sub(const AnsRegex *r, const char *s, size_t n, const char *repl, KilnBuf *out);

// lm-evaluation-harness exact_match: regexes_to_ignore removed from both
// strings (re.sub in order), then lower case (ignore_case), then ASCII
// punctuation (string.punctuation) deleted (ignore_punctuation); 1 if equal.
typedef struct {
    int ignore_case, ignore_punctuation;
    AnsRegex **ignore;
    int nignore;
} AnsExact;
int ans_exact_match(const AnsExact *x, const char *pred, const char *target);

// Unicode helpers with Python's str semantics (simple case mappings; str.isspace
// is utf8_isspace in core/utf8.h).
// [*a, *b): s[0..n) without Python whitespace at either end (str.strip()).
void py_strip_span(const char *s, size_t n, size_t *a, size_t *b);
int py_lower(const char *s, size_t n, KilnBuf *out);  // appends
int py_upper(const char *s, size_t n, KilnBuf *out);  // appends
// Decodes one UTF-8 character at s[0..n) into *cp; returns its byte length
// (an invalid byte is returned as itself, length 1).
size_t py_utf8_next(const char *s, size_t n, uint32_t *cp);

// ---------------------------------------------------------------- tasks
// One dataset record rendered (task.c). Strings are malloc'd.
typedef struct {
    char *id, *text;   // text: the prompt without few-shot examples
    char **choices;    // as in KilnTaskItem (multiple_choice: target_delimiter + choice)
    int nchoices, label;
    char *target;      // loglikelihood, generate, rolling (the text scored)
    char *group;       // pairs
    char *count;       // rolling: the text whose words and bytes normalise perplexity
    char *example;     // as a few-shot example: text + delimiter + gold + fewshot_delimiter
    long index, line;  // record index in its file, line it starts on
} TaskRec;

// What task_rec_choices and the renderers return: fine, a bad record (why
// says what), out of memory.
enum { REC_OK = 0, REC_BAD = -1, REC_OOM = -2 };
// The choices of a record into r (choices, nchoices): a list field (each
// element through the field's filters) or a list of templates. Multiple choice
// prefixes target_delimiter.
int task_rec_choices(const KilnTask *t, const cJSON *rec, long index, TaskRec *r, KilnBuf *b, char *why, size_t n);
void task_rec_free(TaskRec *r);

typedef struct {
    char *name;
    AnsRegex *re;  // NULL: the identity ("none")
    int group_select;
    char *fallback;
} TaskFilter;

struct KilnTask {
    char *name, *file;  // file: the YAML path, for messages
    KilnTaskKind kind;
    DsSpec data;        // paths owned (char *) below
    char *data_path, *label_path;
    Template *id, *text, *target, *group, *count;
    Template **choice_tpl;  // choices as a list of templates
    int nchoice_tpl;
    TplExpr choice_list;    // or as one list field (npath > 0)
    TplExpr label;
    char *target_delim, *fewshot_delim;
    // few-shot: split_from_data >= 0, or a file (fewshot.path), or none
    long split_from_data;
    DsSpec fs;
    char *fs_path;
    int fs_same_file;       // fewshot.path is the data file: sample from it, never the item itself
    int default_shots, max_shots_cfg;  // max_shots_cfg -1: as many as the pool has
    // generate
    char **until;
    int nuntil, max_tokens;
    TaskFilter *filters;
    int nfilters;
    AnsExact exact;
    // decontaminate: the texts looked for in training data, each followed by
    // no choice, each choice, or the gold one (each when the record has no label)
    Template **dc_text;
    int ndc_text;
    enum { DC_NONE, DC_EACH, DC_GOLD } dc_choices;
    // records
    TaskRec *recs, *pool;  // data records (good ones, file order); a separate few-shot file's
    long nrecs, npool, skipped;
    long nsplit;           // split_from_data: records of recs with index < split_from_data
    // task_render's output
    KilnTaskItem *items;
    char **contexts;
    long nitems, ncontexts;
};

// task_spec.c: fills t's settings from the task file's tree (templates
// compiled, regexes compiled, paths joined to data_dir). Errors name file:line.
int task_spec_read(KilnTask *t, const KyNode *root, const char *data_dir, KilnErr *err);
void task_spec_free(KilnTask *t);

#endif
