/* settings.c - the table made from settings.def, and what is done with it
 * (see settings.h). */
#include "settings.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(SETTING_COUNT <= 32, "settings_t.has is 32 bits");
_Static_assert(CFA_BANK_MEAN == 0 && CFA_BANK_EMA == 1, "BANK stores the index into bank_names");

static const char *const bank_names[] = {"mean", "ema"};

/* ---- the table ------------------------------------------------------------ */

#define SV_INT(x) {.i = (long long)(x)}
#define SV_I64(x) {.i = (long long)(x)}
#define SV_BOOL(x) {.i = (long long)(x)}
#define SV_BANK(x) {.i = (long long)(x)}
#define SV_NUM(x) {.d = (double)(x)}
#define WHERE_API (SW_PRODUCT | SW_BODY)
#define WHERE_NONE 0u
#define DEST_BIT_PARAM SW_ENGINE
#define DEST_BIT_JOB 0u

const setting_def settings_table[SETTING_COUNT] = {
#define SETTING(FIELD, TYPE, MIN, MAX, PAPER, DAEMON, WHERE, CLI, FLAG, DEST, DOC)            \
    {#FIELD, ST_##TYPE, (long long)(MIN), (long long)(MAX), (double)(MIN), (double)(MAX),    \
     SV_##TYPE(PAPER), SV_##TYPE(DAEMON), WHERE_##WHERE | DEST_BIT_##DEST, CLI, FLAG, DOC},
#include "settings.def"
#undef SETTING
};

/* ---- values --------------------------------------------------------------- */

void settings_clear(settings_t *s)
{
    memset(s, 0, sizeof *s);
}

void settings_defaults(settings_t *s, settings_defaults_of which)
{
    settings_clear(s);
    for (int id = 0; id < SETTING_COUNT; id++)
        settings_set(s, (setting_id)id,
                     which == SETTINGS_PAPER ? settings_table[id].paper : settings_table[id].daemon);
}

int settings_has(const settings_t *s, setting_id id)
{
    return (s->has >> id) & 1u;
}

void settings_set(settings_t *s, setting_id id, setting_value v)
{
    s->has |= 1u << id;
    s->v[id] = v;
}

/* The C value of a setting, by TYPE, and where it goes, by DEST. */
#define VALUE_INT(v) ((int)(v).i)
#define VALUE_I64(v) ((uint64_t)(v).i)
#define VALUE_NUM(v) ((v).d)
#define VALUE_BOOL(v) ((int)(v).i)
#define VALUE_BANK(v) ((cfa_bank_method)(v).i)
#define TARGET_PARAM(F) p->F
#define TARGET_JOB(F) j->F
#define DEST_OK_PARAM 1
#define DEST_OK_JOB (j != NULL)

void settings_apply(const settings_t *s, cfa_params *p, settings_job *j)
{
#define SETTING(FIELD, TYPE, MIN, MAX, PAPER, DAEMON, WHERE, CLI, FLAG, DEST, DOC) \
    if (settings_has(s, SET_##FIELD) && DEST_OK_##DEST)                             \
        TARGET_##DEST(FIELD) = VALUE_##TYPE(s->v[SET_##FIELD]);
#include "settings.def"
#undef SETTING
}

#define WRAP_INT(x) ((setting_value){.i = (long long)(x)})
#define WRAP_I64(x) WRAP_INT(x)
#define WRAP_BOOL(x) WRAP_INT(x)
#define WRAP_BANK(x) WRAP_INT(x)
#define WRAP_NUM(x) ((setting_value){.d = (double)(x)})
#define FROM_PARAM(TYPE, FIELD) settings_set(out, SET_##FIELD, WRAP_##TYPE(p->FIELD));
#define FROM_JOB(TYPE, FIELD) /* not in cfa_params */

void settings_from_params(const cfa_params *p, settings_t *out)
{
    settings_clear(out);
#define SETTING(FIELD, TYPE, MIN, MAX, PAPER, DAEMON, WHERE, CLI, FLAG, DEST, DOC) \
    FROM_##DEST(TYPE, FIELD)
#include "settings.def"
#undef SETTING
}

/* ---- combining ------------------------------------------------------------ */

void settings_merge(const settings_t *base, const settings_t *top, settings_t *out)
{
    settings_t r = *base;
    for (int id = 0; id < SETTING_COUNT; id++)
        if (settings_has(top, (setting_id)id))
            settings_set(&r, (setting_id)id, top->v[id]);
    *out = r;
}

void settings_resolve(const settings_t *daemon, const settings_t *product,
                      const settings_t *body, settings_t *out)
{
    settings_t r;
    settings_clear(&r);
    if (daemon != NULL)
        settings_merge(&r, daemon, &r);
    if (product != NULL)
        settings_merge(&r, product, &r);
    if (body != NULL)
        settings_merge(&r, body, &r);
    *out = r;
}

int settings_check(const settings_t *s, char *err, size_t errlen)
{
    static const setting_id pairs[][2] = {{SET_crop_h, SET_resize_h}, {SET_crop_w, SET_resize_w}};
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        setting_id crop = pairs[k][0], size = pairs[k][1];
        if (settings_has(s, crop) && settings_has(s, size) && s->v[crop].i > s->v[size].i) {
            snprintf(err, errlen, "\"%s\" (%lld) must not exceed \"%s\" (%lld)",
                     settings_table[crop].key, s->v[crop].i, settings_table[size].key,
                     s->v[size].i);
            return -1;
        }
    }
    /* CFA++ averages a centre-crop model with a resize-only partner: without
     * a crop (the service's default) there is nothing to pair */
    if (settings_has(s, SET_ensemble) && s->v[SET_ensemble].i &&
        ((settings_has(s, SET_crop_h) && s->v[SET_crop_h].i == 0) ||
         (settings_has(s, SET_crop_w) && s->v[SET_crop_w].i == 0))) {
        snprintf(err, errlen, "\"ensemble\" (CFA++) pairs a centre-crop model with a resize-only "
                              "one: it needs \"crop_h\" and \"crop_w\" above 0");
        return -1;
    }
    return 0;
}

/* ---- names ---------------------------------------------------------------- */

int settings_find_key(const char *key)
{
    for (int id = 0; key != NULL && id < SETTING_COUNT; id++)
        if (strcmp(settings_table[id].key, key) == 0)
            return id;
    return -1;
}

int settings_find_cli(const char *flag)
{
    for (int id = 0; flag != NULL && id < SETTING_COUNT; id++)
        if (settings_table[id].cli != NULL && strcmp(settings_table[id].cli, flag) == 0)
            return id;
    return -1;
}

int settings_find_flag(const char *flag)
{
    for (int id = 0; flag != NULL && id < SETTING_COUNT; id++)
        if (settings_table[id].flag != NULL && strcmp(settings_table[id].flag, flag) == 0)
            return id;
    return -1;
}

void settings_env_name(setting_id id, char *buf, size_t cap)
{
    const char *f = settings_table[id].flag != NULL ? settings_table[id].flag : "";
    size_t o = (size_t)snprintf(buf, cap, "CFA_");
    for (; *f != '\0' && o + 1 < cap; f++)
        buf[o++] = *f == '-' ? '_' : (char)toupper((unsigned char)*f);
    if (o < cap)
        buf[o] = '\0';
}

int settings_distance(const char *a, const char *b)
{
    enum { MAXLEN = 64 };
    int prev[MAXLEN + 1], cur[MAXLEN + 1];
    size_t la = strlen(a), lb = strlen(b);
    if (la > MAXLEN || lb > MAXLEN)
        return 9;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof prev);
    }
    return prev[lb] > 8 ? 9 : prev[lb];
}

const char *settings_suggest(const char *word, int names, unsigned need)
{
    const char *best = NULL;
    int best_d = 3;
    for (int id = 0; word != NULL && id < SETTING_COUNT; id++) {
        const setting_def *d = &settings_table[id];
        const char *name = names == SETTINGS_NAMES_KEYS ? d->key
                           : names == SETTINGS_NAMES_CLI ? d->cli
                                                         : d->flag;
        if (name == NULL || (names == SETTINGS_NAMES_KEYS && (d->where & need) != need))
            continue;
        int dist = settings_distance(word, name);
        /* two edits of a two-letter word is any other word */
        if (dist < best_d && dist < (int)strlen(word)) {
            best = name;
            best_d = dist;
        }
    }
    return best;
}

/* ---- text values ---------------------------------------------------------- */

void settings_describe(setting_id id, char *buf, size_t cap)
{
    const setting_def *d = &settings_table[id];
    switch (d->type) {
    case ST_INT:
    case ST_I64:
        snprintf(buf, cap, "an integer in [%lld, %lld]", d->imin, d->imax);
        return;
    case ST_NUM:
        snprintf(buf, cap, "a number in [%g, %g]", d->dmin, d->dmax);
        return;
    case ST_BOOL:
        snprintf(buf, cap, "true or false");
        return;
    case ST_BANK:
        snprintf(buf, cap, "one of %s, %s", bank_names[0], bank_names[1]);
        return;
    }
}

void settings_format(setting_id id, setting_value v, char *buf, size_t cap)
{
    switch (settings_table[id].type) {
    case ST_INT:
    case ST_I64:
        snprintf(buf, cap, "%lld", v.i);
        return;
    case ST_NUM:
        snprintf(buf, cap, "%g", v.d);
        return;
    case ST_BOOL:
        snprintf(buf, cap, "%s", v.i ? "true" : "false");
        return;
    case ST_BANK:
        snprintf(buf, cap, "%s", v.i >= 0 && v.i <= 1 ? bank_names[v.i] : "?");
        return;
    }
}

/* 0 if text is exactly one value of id's type within its range. */
static int value_from_text(setting_id id, const char *t, setting_value *v)
{
    const setting_def *d = &settings_table[id];
    char *end = NULL;
    if (t == NULL || *t == '\0' || isspace((unsigned char)*t))
        return -1;
    errno = 0;
    switch (d->type) {
    case ST_INT:
    case ST_I64:
        v->i = strtoll(t, &end, 10);
        return errno == 0 && *end == '\0' && v->i >= d->imin && v->i <= d->imax ? 0 : -1;
    case ST_NUM:
        v->d = strtod(t, &end);
        return errno == 0 && *end == '\0' && v->d >= d->dmin && v->d <= d->dmax ? 0 : -1;
    case ST_BOOL:
        if (strcmp(t, "1") == 0 || strcmp(t, "true") == 0)
            v->i = 1;
        else if (strcmp(t, "0") == 0 || strcmp(t, "false") == 0)
            v->i = 0;
        else
            return -1;
        return 0;
    case ST_BANK:
        for (long long k = 0; k < 2; k++)
            if (strcmp(t, bank_names[k]) == 0) {
                v->i = k;
                return 0;
            }
        return -1;
    }
    return -1;
}

int settings_set_text(settings_t *s, setting_id id, const char *text, char *err, size_t errlen)
{
    setting_value v;
    if (value_from_text(id, text, &v) != 0) {
        char what[64];
        settings_describe(id, what, sizeof what);
        snprintf(err, errlen, "must be %s, got \"%s\"", what, text != NULL ? text : "");
        return -1;
    }
    settings_set(s, id, v);
    return 0;
}

/* ---- JSON ----------------------------------------------------------------- */

static int value_from_json(setting_id id, const json_t *x, setting_value *v)
{
    const setting_def *d = &settings_table[id];
    switch (d->type) {
    case ST_INT:
    case ST_I64:
        if (!json_is_integer(x))
            return -1;
        v->i = json_integer_value(x);
        return v->i >= d->imin && v->i <= d->imax ? 0 : -1;
    case ST_NUM:
        if (!json_is_number(x))
            return -1;
        v->d = json_number_value(x);
        return v->d >= d->dmin && v->d <= d->dmax ? 0 : -1; /* NaN fails both */
    case ST_BOOL:
        if (!json_is_boolean(x))
            return -1;
        v->i = json_is_true(x);
        return 0;
    case ST_BANK:
        return json_is_string(x) ? value_from_text(id, json_string_value(x), v) : -1;
    }
    return -1;
}

json_t *settings_value_json(setting_id id, setting_value v)
{
    switch (settings_table[id].type) {
    case ST_INT:
    case ST_I64:
        return json_integer(v.i);
    case ST_NUM:
        return json_real(v.d);
    case ST_BOOL:
        return json_boolean(v.i);
    case ST_BANK:
        return json_string(bank_names[v.i == 1]);
    }
    return json_null();
}

/* Reads one key of a settings object into s; -1 with a message naming it. */
static int read_key(settings_t *s, const char *key, const json_t *x, unsigned need, char *err,
                    size_t errlen)
{
    int id = settings_find_key(key);
    if (id < 0) {
        const char *near = settings_suggest(key, SETTINGS_NAMES_KEYS, need);
        if (near != NULL)
            snprintf(err, errlen, "unknown key \"%s\" (did you mean \"%s\"?)", key, near);
        else
            snprintf(err, errlen, "unknown key \"%s\"", key);
        return -1;
    }
    if ((settings_table[id].where & need) != need) {
        snprintf(err, errlen, "\"%s\" cannot be set here (the engine's default is used)", key);
        return -1;
    }
    if (json_is_null(x))
        return 0; /* null: not set, as if absent */
    setting_value v;
    if (value_from_json((setting_id)id, x, &v) != 0) {
        char what[64];
        char *got = json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT);
        settings_describe((setting_id)id, what, sizeof what);
        snprintf(err, errlen, "\"%s\" must be %s, got %.40s", key, what, got != NULL ? got : "?");
        free(got);
        return -1;
    }
    settings_set(s, (setting_id)id, v);
    return 0;
}

int settings_from_json(const json_t *obj, unsigned need, settings_t *out, char *err, size_t errlen)
{
    settings_t s;
    const char *key;
    json_t *x;
    settings_clear(&s);
    if (errlen > 0)
        err[0] = '\0';
    if (obj != NULL && !json_is_null(obj)) {
        if (!json_is_object(obj)) {
            snprintf(err, errlen, "not a JSON object");
            return -1;
        }
        json_object_foreach((json_t *)obj, key, x) {
            if (read_key(&s, key, x, need, err, errlen) != 0)
                return -1;
        }
        if (settings_check(&s, err, errlen) != 0)
            return -1;
    }
    *out = s;
    return 0;
}

/* Appends msg to warn, "; "-separated, as far as it fits. */
static void note(char *warn, size_t warnlen, const char *msg)
{
    size_t used = warn != NULL ? strlen(warn) : 0;
    if (warn == NULL || used + 1 >= warnlen)
        return;
    snprintf(warn + used, warnlen - used, "%s%s", used > 0 ? "; " : "", msg);
}

int settings_from_stored(const char *text, unsigned need, settings_t *out, char *warn,
                         size_t warnlen)
{
    int skipped = 0;
    const char *key;
    json_t *x;
    settings_clear(out);
    if (warn != NULL && warnlen > 0)
        warn[0] = '\0';
    if (text == NULL || *text == '\0')
        return 0;
    json_t *o = json_loads(text, 0, NULL);
    if (!json_is_object(o)) {
        note(warn, warnlen, "not a JSON object");
        json_decref(o);
        return 1;
    }
    json_object_foreach(o, key, x) {
        char e[256];
        if (read_key(out, key, x, need, e, sizeof e) != 0) {
            note(warn, warnlen, e);
            skipped++;
        }
    }
    json_decref(o);
    return skipped;
}

json_t *settings_to_json(const settings_t *s, unsigned need)
{
    json_t *o = json_object();
    for (int id = 0; o != NULL && id < SETTING_COUNT; id++)
        if (settings_has(s, (setting_id)id) && (settings_table[id].where & need) == need)
            json_object_set_new(o, settings_table[id].key, settings_value_json((setting_id)id, s->v[id]));
    return o;
}

char *settings_dumps(const settings_t *s, unsigned need)
{
    json_t *o = settings_to_json(s, need);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    return text;
}
