/*
 * settings.h - the training settings, declared once in settings.def, and
 * everything done with them: JSON in and out, merging and the one rule of
 * precedence, flags and environment values, the CLI's flags, the OpenAPI
 * schema.
 *
 * A settings_t holds a value for some settings (the others are "not set").
 * The precedence of a training job is
 *     the daemon's defaults < the product's settings < the POST /train body
 * and settings_resolve() is the only place that knows it.
 *
 *     settings_t d, prod, body, job;
 *     settings_defaults(&d, SETTINGS_DAEMON);             (then flags, env)
 *     if (settings_from_json(body_json, SW_BODY, &body, err, sizeof err)) -> 400
 *     settings_from_stored(product_text, SW_PRODUCT, &prod, warn, sizeof warn);
 *     settings_resolve(&d, &prod, &body, &job);
 *     cfa_params p = cfa_default_params(); settings_job sj;
 *     settings_apply(&job, &p, &sj);
 *
 * Error messages name the key (or flag) and the allowed values, e.g.
 *     unknown key "gama_c" (did you mean "gamma_c"?)
 *     "gamma_c" must be an integer in [1, 64], got 100
 * Pure and thread-safe; allocates only what it returns (json_t, text).
 */
#ifndef CFA_SETTINGS_H
#define CFA_SETTINGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "cfa.h"

/* SET_<field>, in the order of settings.def */
typedef enum {
#define SETTING(FIELD, ...) SET_##FIELD,
#include "settings.def"
#undef SETTING
    SETTING_COUNT
} setting_id;

typedef enum { ST_INT, ST_I64, ST_NUM, ST_BOOL, ST_BANK } setting_type;

/* Where a setting may appear (setting_def.where); a "need" argument below
 * selects the settings whose where has all of its bits. */
enum {
    SW_PRODUCT = 1, /* a key of a product's settings              */
    SW_BODY = 2,    /* a key of a POST /train body (and job params) */
    SW_ENGINE = 4   /* goes to cfa_params: shapes the model       */
};

typedef union setting_value {
    long long i; /* INT, I64, BOOL (0/1), BANK (cfa_bank_method) */
    double d;    /* NUM */
} setting_value;

typedef struct setting_def {
    const char *key;         /* JSON key = C field                     */
    setting_type type;
    long long imin, imax;    /* range of INT, I64, BOOL, BANK          */
    double dmin, dmax;       /* range of NUM                           */
    setting_value paper;     /* the CLI's default (the engine's)       */
    setting_value daemon;    /* cfa-server's default                   */
    unsigned where;          /* SW_* bits                              */
    const char *cli;         /* cfa flag without "--", or NULL         */
    const char *flag;        /* cfa-server flag without "--", or NULL  */
    const char *doc;
} setting_def;

extern const setting_def settings_table[SETTING_COUNT];

typedef struct settings {
    uint32_t has;                   /* bit id: settings_has()  */
    setting_value v[SETTING_COUNT];
} settings_t;

/* The settings of DEST JOB: what the job runner does around the engine. */
typedef struct settings_job {
    double holdout, target_far, target_far_ng, margin;
    int keep_aspect, border;
    int activate;
    int tile, tile_overlap; /* issue 13: tiles of the images, 0 = off */
    int edge_profile;       /* fit and take out the map's rise at the edges */
} settings_job;

typedef enum { SETTINGS_PAPER, SETTINGS_DAEMON } settings_defaults_of;

/* Every setting set to the table's PAPER or DAEMON column. */
void settings_defaults(settings_t *s, settings_defaults_of which);
/* No setting set. */
void settings_clear(settings_t *s);
int settings_has(const settings_t *s, setting_id id);
void settings_set(settings_t *s, setting_id id, setting_value v);

/* ---- JSON ------------------------------------------------------------------ */

/* Reads the settings object obj (NULL or JSON null = empty) strictly: a key
 * that is unknown or whose where lacks a bit of need, a value of the wrong
 * type or out of range, is an error naming the key and what is allowed.
 * A JSON null value leaves the key unset. Also checks settings_check() on
 * the keys given. 0, or -1 with the message in err. */
int settings_from_json(const json_t *obj, unsigned need, settings_t *out /* OUT */,
                       char *err, size_t errlen);

/* Reads settings that this or an earlier version stored (a product's
 * settings, a job's params). Never fails: a key now unknown, or a value no
 * longer valid, is skipped and described in warn ("" when none; the first
 * few, "; "-separated). Returns the number skipped.
 * Why skip rather than refuse: earlier versions stored product settings as
 * given, typos included, and ignored the keys they did not know; refusing
 * them now would make those products untrainable until someone PATCHes
 * them, for keys that never had an effect. New writes are strict
 * (settings_from_json), so such keys can only come from old databases, and
 * GET still shows the stored text so an operator can see and fix them. */
int settings_from_stored(const char *text, unsigned need, settings_t *out /* OUT */,
                         char *warn, size_t warnlen);

/* One value as JSON (new reference). */
json_t *settings_value_json(setting_id id, setting_value v);
/* A new object with the set settings whose where has all bits of need. */
json_t *settings_to_json(const settings_t *s, unsigned need);
/* settings_to_json as compact text with sorted keys (17 significant digits:
 * numbers read back exactly); malloc'd, NULL on allocation failure. */
char *settings_dumps(const settings_t *s, unsigned need);

/* ---- combining ------------------------------------------------------------- */

/* out = base with every setting set in top replacing base's. out may alias. */
void settings_merge(const settings_t *base, const settings_t *top, settings_t *out);
/* THE precedence of a training job: daemon < product < body. Each may be
 * NULL (nothing set). */
void settings_resolve(const settings_t *daemon, const settings_t *product,
                      const settings_t *body, settings_t *out /* OUT */);
/* Rules between settings, checked on those set: a crop no larger than the
 * resize. 0, or -1 with a message naming both keys in err. */
int settings_check(const settings_t *s, char *err, size_t errlen);
/* Writes the set settings into p (DEST PARAM) and j (DEST JOB; may be NULL);
 * the others keep their values. */
void settings_apply(const settings_t *s, cfa_params *p, settings_job *j);
/* Every DEST PARAM setting from p (the JOB ones stay unset). */
void settings_from_params(const cfa_params *p, settings_t *out /* OUT */);

/* ---- text: flags and environment -------------------------------------------- */

/* The id of a JSON key / CLI flag (the first of a pair) / daemon flag; -1. */
int settings_find_key(const char *key);
int settings_find_cli(const char *flag);
int settings_find_flag(const char *flag);
/* The environment variable of a daemon flag (CFA_GAMMA_C) into buf. */
void settings_env_name(setting_id id, char *buf, size_t cap);
/* What a setting accepts: "an integer in [1, 64]", "one of mean, ema". */
void settings_describe(setting_id id, char *buf, size_t cap);
/* A value as text, as the flags take it: "8", "0.001", "ema", "true". */
void settings_format(setting_id id, setting_value v, char *buf, size_t cap);
/* Parses text (a flag or environment value) for id into s: the same ranges
 * as JSON; BOOL takes 0, 1, true, false. 0, or -1 with "must be ..., got
 * ..." in err. */
int settings_set_text(settings_t *s, setting_id id, const char *text, char *err,
                      size_t errlen);
/* The CLI: if argv[*i] is a settings flag, consumes it (and its value: *i
 * moves to the last argument used) into s and returns 1; -1 with a message
 * naming the flag on a bad or missing value; 0 when argv[*i] is not one. */
int settings_cli_arg(settings_t *s, int argc, char **argv, int *i, char *err, size_t errlen);
/* The CLI's --help lines of the settings, defaults from the PAPER column. */
void settings_cli_usage(FILE *f);
/* The nearest known name to word (at most 2 edits away, else NULL) among
 * the JSON keys with need (SETTINGS_NAMES_KEYS), the CLI flags or the
 * daemon flags. */
enum { SETTINGS_NAMES_KEYS, SETTINGS_NAMES_CLI, SETTINGS_NAMES_FLAGS };
const char *settings_suggest(const char *word, int names, unsigned need);
/* Edit distance (Levenshtein) of two short strings; larger than 8 is 9. */
int settings_distance(const char *a, const char *b);

/* ---- OpenAPI ---------------------------------------------------------------- */

/* The JSON schema (OpenAPI 3.0) of an object of the settings with need:
 * types, ranges, the daemon's defaults, no other keys. New reference. */
json_t *settings_schema(unsigned need, const char *description);

#endif
