/* test_settings.c - the training settings table (server/settings/) and what
 * is done with it: JSON in and out, merging and precedence, flag values,
 * the CLI's flags, the OpenAPI schema. No torch (cfa_default_params() is in
 * the torch-free cfa_core_io). */
#define _GNU_SOURCE /* open_memstream */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "settings.h"

static settings_t parse_ok(const char *text, unsigned need)
{
    char err[256] = "";
    settings_t s;
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    if (settings_from_json(j, need, &s, err, sizeof err) != 0)
        fail_msg("%s: %s", text, err);
    json_decref(j);
    return s;
}

/* ---- the table itself ----------------------------------------------------- */

static void test_table_sane(void **state)
{
    (void)state;
    for (int a = 0; a < SETTING_COUNT; a++) {
        const setting_def *d = &settings_table[a];
        assert_true(d->doc != NULL && d->doc[0] != '\0');
        assert_int_equal(settings_find_key(d->key), a);
        if (d->flag != NULL)
            assert_int_equal(settings_find_flag(d->flag), a);
        /* a CLI flag is unique, or the second of an H[xW] pair */
        if (d->cli != NULL && settings_find_cli(d->cli) != a)
            assert_int_equal(settings_find_cli(d->cli), a - 1);
        if (d->type == ST_NUM) {
            assert_true(d->dmin <= d->dmax);
            assert_true(d->paper.d >= d->dmin && d->paper.d <= d->dmax);
            assert_true(d->daemon.d >= d->dmin && d->daemon.d <= d->dmax);
        } else {
            assert_true(d->imin <= d->imax);
            assert_true(d->paper.i >= d->imin && d->paper.i <= d->imax);
            assert_true(d->daemon.i >= d->imin && d->daemon.i <= d->imax);
        }
        if (d->type == ST_BOOL || d->type == ST_BANK)
            assert_true(d->imin == 0 && d->imax == 1);
        /* what the API sets, the daemon has a default flag for (but activate) */
        if ((d->where & SW_BODY) && a != SET_activate)
            assert_non_null(d->flag);
    }
    assert_int_equal(settings_find_key("gama_c"), -1);
    assert_int_equal(settings_find_cli("gamma_c"), -1);
}

/* The PAPER column is the engine's cfa_default_params(), and the table has a
 * row for each of cfa_params' 22 fields (a new field needs a row). */
static void test_paper_is_engine(void **state)
{
    (void)state;
    settings_t paper, from_engine, from_applied;
    cfa_params e = cfa_default_params(), z;
    int n_param = 0;
    settings_defaults(&paper, SETTINGS_PAPER);
    memset(&z, 0xab, sizeof z);
    settings_apply(&paper, &z, NULL);
    settings_from_params(&e, &from_engine);
    settings_from_params(&z, &from_applied);
    assert_int_equal(from_engine.has, from_applied.has);
    for (int id = 0; id < SETTING_COUNT; id++) {
        if (!(settings_table[id].where & SW_ENGINE))
            continue;
        n_param++;
        if (memcmp(&from_engine.v[id], &from_applied.v[id], sizeof(setting_value)) != 0)
            fail_msg("%s: the table's PAPER default is not the engine's",
                     settings_table[id].key);
    }
    assert_int_equal(n_param, 22);
}

/* The daemon's defaults differ from the paper's in gamma_c and gamma_d, the
 * crop (the service inspects the whole image), keep_aspect and edge_profile
 * only (settings.def says why); another difference must be made here too. */
static void test_daemon_differs_only_in_gamma(void **state)
{
    (void)state;
    for (int id = 0; id < SETTING_COUNT; id++) {
        const setting_def *d = &settings_table[id];
        int differs = memcmp(&d->paper, &d->daemon, sizeof d->paper) != 0;
        assert_int_equal(differs, id == SET_gamma_c || id == SET_gamma_d || id == SET_crop_h ||
                                      id == SET_crop_w || id == SET_keep_aspect ||
                                      id == SET_edge_profile);
    }
    settings_t d;
    settings_defaults(&d, SETTINGS_DAEMON);
    assert_int_equal(d.v[SET_gamma_c].i, 8);
    assert_int_equal(d.v[SET_gamma_d].i, 8);
    assert_int_equal(d.v[SET_epochs].i, 30);
    assert_int_equal(d.has, (uint32_t)((1ull << SETTING_COUNT) - 1));
}

/* ---- JSON ------------------------------------------------------------------ */

static void test_json_reads(void **state)
{
    (void)state;
    settings_t s = parse_ok("{\"epochs\": 5, \"gamma_c\": 4, \"bank\": \"ema\", \"activate\": false,"
                            " \"target_far\": 0.01, \"lr\": 1, \"seed\": 9223372036854775807,"
                            " \"ensemble\": true, \"holdout\": null}",
                            SW_BODY);
    assert_true(settings_has(&s, SET_epochs) && s.v[SET_epochs].i == 5);
    assert_true(s.v[SET_gamma_c].i == 4);
    assert_true(s.v[SET_bank].i == CFA_BANK_EMA);
    assert_true(settings_has(&s, SET_activate) && s.v[SET_activate].i == 0);
    assert_true(s.v[SET_target_far].d == 0.01);
    assert_true(s.v[SET_lr].d == 1.0); /* an integer where a number goes */
    assert_true(s.v[SET_seed].i == INT64_MAX);
    assert_true(s.v[SET_ensemble].i == 1);
    assert_false(settings_has(&s, SET_holdout)); /* null: not set */
    assert_false(settings_has(&s, SET_gamma_d));
    /* NULL, JSON null and {} are empty */
    char err[64];
    assert_int_equal(settings_from_json(NULL, SW_PRODUCT, &s, err, sizeof err), 0);
    assert_int_equal(s.has, 0);
    s = parse_ok("null", SW_PRODUCT);
    assert_int_equal(s.has, 0);
    s = parse_ok("{}", SW_PRODUCT);
    assert_int_equal(s.has, 0);
    /* activate: a key of train bodies, and of product settings as it always was */
    s = parse_ok("{\"activate\": false}", SW_PRODUCT);
    assert_true(settings_has(&s, SET_activate));
}

/* Every refusal names the key and what it takes. */
static void test_json_errors(void **state)
{
    (void)state;
    const struct {
        const char *json;
        const char *expect;
    } bad[] = {
        {"{\"gama_c\": 8}", "unknown key \"gama_c\" (did you mean \"gamma_c\"?)"},
        {"{\"epoch\": 2}", "unknown key \"epoch\" (did you mean \"epochs\"?)"},
        {"{\"activte\": false}", "unknown key \"activte\" (did you mean \"activate\"?)"},
        {"{\"epochs\": 2, \"zzzz\": 1}", "unknown key \"zzzz\""},
        {"{\"ema_beta\": 0.5}", "\"ema_beta\" cannot be set here"},
        {"{\"epochs\": -1}", "\"epochs\" must be an integer in [0, 1000], got -1"},
        {"{\"epochs\": 1.5}", "\"epochs\" must be an integer in [0, 1000], got 1.5"},
        {"{\"epochs\": \"3\"}", "\"epochs\" must be an integer in [0, 1000], got \"3\""},
        {"{\"gamma_c\": 0}", "\"gamma_c\" must be an integer in [1, 64], got 0"},
        {"{\"gamma_d\": 65}", "\"gamma_d\" must be an integer in [1, 64], got 65"},
        {"{\"bank\": \"median\"}", "\"bank\" must be one of mean, ema, got \"median\""},
        {"{\"bank\": 1}", "\"bank\" must be one of mean, ema"},
        {"{\"activate\": 1}", "\"activate\" must be true or false, got 1"},
        {"{\"target_far\": 2}", "\"target_far\" must be a number in [0, 0.5], got 2"},
        {"{\"margin\": 0.05}", "\"margin\" must be a number in [0.1, 10]"},
        {"{\"lr\": 0}", "\"lr\" must be a number in [1e-08, 10]"},
        {"{\"seed\": -1}", "\"seed\" must be an integer in [0, 9223372036854775807]"},
        {"{\"resize_h\": 64, \"crop_h\": 128}", "\"crop_h\" (128) must not exceed \"resize_h\" (64)"},
        {"[1]", "not a JSON object"},
        {"3", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        settings_t s;
        json_t *j = json_loads(bad[i].json, JSON_DECODE_ANY, NULL);
        assert_non_null(j);
        assert_int_equal(settings_from_json(j, SW_BODY, &s, err, sizeof err), -1);
        if (strstr(err, bad[i].expect) == NULL)
            fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].json, err, bad[i].expect);
        json_decref(j);
    }
    /* far from every key: no guess */
    char err[256];
    settings_t s;
    json_t *j = json_loads("{\"zzzz\": 1}", 0, NULL);
    assert_int_equal(settings_from_json(j, SW_PRODUCT, &s, err, sizeof err), -1);
    assert_null(strstr(err, "did you mean"));
    json_decref(j);
}

static void test_json_round_trip(void **state)
{
    (void)state;
    settings_t a = parse_ok("{\"margin\": 2, \"lr\": 0.1, \"bank\": \"mean\", \"seed\": 7,"
                            " \"ensemble\": false, \"crop_w\": 0}",
                            SW_BODY);
    char *text = settings_dumps(&a, SW_BODY);
    assert_string_equal(text, "{\"bank\":\"mean\",\"crop_w\":0,\"ensemble\":false,\"lr\":0.10000000000000001,"
                              "\"margin\":2.0,\"seed\":7}");
    settings_t b = parse_ok(text, SW_BODY);
    assert_int_equal(a.has, b.has);
    assert_memory_equal(a.v, b.v, sizeof a.v);
    free(text);
    /* need selects: the daemon's defaults as a job's params, as figures */
    settings_t d;
    settings_defaults(&d, SETTINGS_DAEMON);
    json_t *job = settings_to_json(&d, SW_BODY);
    json_t *fig = settings_to_json(&d, SW_BODY | SW_ENGINE);
    json_t *all = settings_to_json(&d, SW_ENGINE);
    assert_non_null(json_object_get(job, "activate"));
    assert_non_null(json_object_get(job, "holdout"));
    assert_null(json_object_get(job, "ema_beta"));
    assert_null(json_object_get(fig, "activate"));
    assert_non_null(json_object_get(fig, "gamma_c"));
    assert_non_null(json_object_get(all, "loss_scale"));
    assert_int_equal(json_object_size(all), 22);
    json_decref(job);
    json_decref(fig);
    json_decref(all);
}

/* Old databases: product settings stored as given, typos included. */
static void test_stored_is_lenient(void **state)
{
    (void)state;
    settings_t s;
    char warn[256];
    int n = settings_from_stored("{\"gama_c\": 8, \"epochs\": 3, \"gamma_d\": 100, \"activate\": false}",
                                 SW_PRODUCT, &s, warn, sizeof warn);
    assert_int_equal(n, 2);
    assert_non_null(strstr(warn, "\"gama_c\""));
    assert_non_null(strstr(warn, "\"gamma_d\" must be an integer in [1, 64], got 100"));
    assert_true(settings_has(&s, SET_epochs) && s.v[SET_epochs].i == 3);
    assert_true(settings_has(&s, SET_activate) && s.v[SET_activate].i == 0);
    assert_false(settings_has(&s, SET_gamma_d));
    assert_int_equal(settings_from_stored("[1]", SW_PRODUCT, &s, warn, sizeof warn), 1);
    assert_int_equal(s.has, 0);
    assert_int_equal(settings_from_stored("{", SW_PRODUCT, &s, warn, sizeof warn), 1);
    assert_int_equal(settings_from_stored(NULL, SW_PRODUCT, &s, warn, sizeof warn), 0);
    assert_string_equal(warn, "");
    assert_int_equal(settings_from_stored("{}", SW_BODY, &s, NULL, 0), 0);
    /* many bad keys: the warning is cut, never overrun */
    char small[16];
    n = settings_from_stored("{\"a1\":1,\"a2\":1,\"a3\":1,\"a4\":1}", SW_BODY, &s, small, sizeof small);
    assert_int_equal(n, 4);
    assert_true(strlen(small) < sizeof small);
}

/* ---- combining ------------------------------------------------------------- */

static void test_precedence(void **state)
{
    (void)state;
    settings_t daemon, product, body, job;
    settings_defaults(&daemon, SETTINGS_DAEMON);
    daemon.v[SET_holdout].d = 0.2; /* as a flag would */
    product = parse_ok("{\"gamma_c\": 4, \"epochs\": 5, \"activate\": false}", SW_PRODUCT);
    body = parse_ok("{\"epochs\": 7, \"activate\": true}", SW_BODY);
    settings_resolve(&daemon, &product, &body, &job);
    assert_int_equal(job.has, daemon.has);
    assert_int_equal(job.v[SET_epochs].i, 7);    /* body over product */
    assert_int_equal(job.v[SET_gamma_c].i, 4);   /* product over daemon */
    assert_int_equal(job.v[SET_gamma_d].i, 8);   /* daemon */
    assert_true(job.v[SET_holdout].d == 0.2);    /* daemon flag */
    assert_int_equal(job.v[SET_activate].i, 1);
    settings_resolve(&daemon, NULL, NULL, &job);
    assert_memory_equal(&job, &daemon, sizeof job);
    settings_resolve(NULL, NULL, &body, &job);
    assert_int_equal(job.has, body.has);
    /* merge may alias */
    settings_merge(&product, &body, &product);
    assert_int_equal(product.v[SET_epochs].i, 7);
    assert_int_equal(product.v[SET_gamma_c].i, 4);
    /* the rules between settings hold on the result */
    char err[128];
    settings_t small = parse_ok("{\"resize_h\": 128}", SW_PRODUCT), cropped = daemon;
    cropped.v[SET_crop_h].i = cropped.v[SET_crop_w].i = 224; /* the CLI's, the paper's */
    settings_resolve(&cropped, &small, NULL, &job);
    assert_int_equal(settings_check(&job, err, sizeof err), -1);
    assert_string_equal(err, "\"crop_h\" (224) must not exceed \"resize_h\" (128)");
    settings_resolve(&cropped, &small, &(settings_t){0}, &job);
    job.v[SET_crop_h].i = 112;
    assert_int_equal(settings_check(&job, err, sizeof err), 0);
    /* CFA++ needs a crop: refused on the service's defaults, fine with one */
    settings_t pp = parse_ok("{\"ensemble\": true}", SW_PRODUCT);
    settings_resolve(&daemon, &pp, NULL, &job);
    assert_int_equal(settings_check(&job, err, sizeof err), -1);
    assert_non_null(strstr(err, "\"ensemble\" (CFA++)"));
    settings_resolve(&cropped, &pp, NULL, &job);
    assert_int_equal(settings_check(&job, err, sizeof err), 0);
}

static void test_apply(void **state)
{
    (void)state;
    settings_t s = parse_ok("{\"bank\": \"ema\", \"seed\": 9223372036854775807, \"lr\": 0.01,"
                            " \"holdout\": 0.25, \"margin\": 1.5, \"activate\": false, \"crop_h\": 0}",
                            SW_BODY);
    cfa_params p = cfa_default_params();
    settings_job j = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
    settings_apply(&s, &p, &j);
    assert_int_equal(p.bank, CFA_BANK_EMA);
    assert_true(p.seed == (uint64_t)INT64_MAX);
    assert_true(p.lr == 0.01f);
    assert_int_equal(p.crop_h, 0);
    assert_int_equal(p.crop_w, 224);  /* not set: unchanged */
    assert_int_equal(p.epochs, 30);
    assert_true(j.holdout == 0.25 && j.margin == 1.5 && j.activate == 0);
    assert_true(j.target_far == -1); /* not set */
    settings_apply(&s, &p, NULL);     /* no job part: fine */
}

/* ---- text: flags, environment, the CLI ---------------------------------- */

static void test_text_values(void **state)
{
    (void)state;
    settings_t s;
    char err[128];
    settings_clear(&s);
    assert_int_equal(settings_set_text(&s, SET_gamma_c, "8", err, sizeof err), 0);
    assert_int_equal(s.v[SET_gamma_c].i, 8);
    assert_int_equal(settings_set_text(&s, SET_lr, "1e-3", err, sizeof err), 0);
    assert_true(s.v[SET_lr].d == 1e-3);
    assert_int_equal(settings_set_text(&s, SET_ensemble, "true", err, sizeof err), 0);
    assert_int_equal(settings_set_text(&s, SET_activate, "0", err, sizeof err), 0);
    assert_int_equal(s.v[SET_activate].i, 0);
    assert_int_equal(settings_set_text(&s, SET_bank, "ema", err, sizeof err), 0);
    assert_int_equal(s.v[SET_bank].i, CFA_BANK_EMA);
    const struct {
        setting_id id;
        const char *text;
    } bad[] = {{SET_gamma_c, "8x"}, {SET_gamma_c, " 8"}, {SET_gamma_c, ""},    {SET_gamma_c, "1e1"},
               {SET_gamma_c, "65"}, {SET_epochs, "-1"},  {SET_lr, "nan"},      {SET_lr, "inf"},
               {SET_lr, "0"},       {SET_holdout, "0.6"}, {SET_ensemble, "yes"}, {SET_bank, "EMA"},
               {SET_seed, "9223372036854775808"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(settings_set_text(&s, bad[i].id, bad[i].text, err, sizeof err), -1);
        assert_non_null(strstr(err, "must be "));
        assert_non_null(strstr(err, bad[i].text));
    }
    char env[48];
    settings_env_name(SET_gamma_c, env, sizeof env);
    assert_string_equal(env, "CFA_GAMMA_C");
    settings_env_name(SET_target_far, env, sizeof env);
    assert_string_equal(env, "CFA_TARGET_FAR");
    settings_env_name(SET_batch_size, env, sizeof env);
    assert_string_equal(env, "CFA_BATCH_SIZE");
    char v[32];
    settings_format(SET_bank, settings_table[SET_bank].paper, v, sizeof v);
    assert_string_equal(v, "mean");
    settings_format(SET_lr, settings_table[SET_lr].paper, v, sizeof v);
    assert_string_equal(v, "0.001");
}

/* Runs settings_cli_arg over argv; the result and where i ended. */
static int cli(settings_t *s, int argc, char **argv, int *i, char *err)
{
    *i = 0;
    return settings_cli_arg(s, argc, argv, i, err, 256);
}

static void test_cli_flags(void **state)
{
    (void)state;
    settings_t s;
    char err[256];
    int i;
    settings_defaults(&s, SETTINGS_PAPER);
    char *pair[] = {"--resize", "128x96"};
    assert_int_equal(cli(&s, 2, pair, &i, err), 1);
    assert_int_equal(i, 1);
    assert_true(s.v[SET_resize_h].i == 128 && s.v[SET_resize_w].i == 96);
    char *one[] = {"--crop", "100"};
    assert_int_equal(cli(&s, 2, one, &i, err), 1);
    assert_true(s.v[SET_crop_h].i == 100 && s.v[SET_crop_w].i == 100);
    char *sw[] = {"--feature-half", "--epochs"};
    assert_int_equal(cli(&s, 2, sw, &i, err), 1);
    assert_int_equal(i, 0);
    assert_int_equal(s.v[SET_feature_half].i, 1);
    char *names[] = {"--batch", "8", "--sigma", "2", "--wd", "0", "--K", "5"};
    for (int k = 0; k < 8; k += 2) {
        i = k;
        assert_int_equal(settings_cli_arg(&s, 8, names, &i, err, sizeof err), 1);
        assert_int_equal(i, k + 1);
    }
    assert_true(s.v[SET_batch_size].i == 8 && s.v[SET_blur_sigma].d == 2.0 &&
                s.v[SET_weight_decay].d == 0.0 && s.v[SET_K].i == 5);
    char *missing[] = {"--gamma-c"};
    assert_int_equal(cli(&s, 1, missing, &i, err), -1);
    assert_string_equal(err, "--gamma-c needs a value (an integer in [1, 64])");
    char *range[] = {"--gamma-c", "100"};
    assert_int_equal(cli(&s, 2, range, &i, err), -1);
    assert_string_equal(err, "--gamma-c: must be an integer in [1, 64], got \"100\"");
    char *half[] = {"--resize", "128x"};
    assert_int_equal(cli(&s, 2, half, &i, err), -1);
    assert_non_null(strstr(err, "--resize"));
    /* not settings flags of the CLI: left to the caller */
    char *other[] = {"--data", "x"};
    assert_int_equal(cli(&s, 2, other, &i, err), 0);
    char *daemon_only[] = {"--holdout", "0.2"};
    assert_int_equal(cli(&s, 2, daemon_only, &i, err), 0);
    char *plain[] = {"image.png"};
    assert_int_equal(cli(&s, 1, plain, &i, err), 0);
}

static void test_cli_usage(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    settings_cli_usage(f);
    fclose(f);
    for (int id = 0; id < SETTING_COUNT; id++)
        if (settings_table[id].cli != NULL) {
            char want[48];
            snprintf(want, sizeof want, "--%s ", settings_table[id].cli);
            assert_non_null(strstr(text, want));
        }
    assert_non_null(strstr(text, "--resize H[xW]"));
    assert_non_null(strstr(text, "(default 256x256; an integer in [16, 2048])"));
    assert_non_null(strstr(text, "(default 1; an integer in [1, 64])")); /* paper's gamma */
    free(text);
}

static void test_suggest(void **state)
{
    (void)state;
    assert_int_equal(settings_distance("kitten", "sitting"), 3);
    assert_int_equal(settings_distance("", "abc"), 3);
    assert_int_equal(settings_distance("same", "same"), 0);
    assert_string_equal(settings_suggest("gama_c", SETTINGS_NAMES_KEYS, SW_BODY), "gamma_c");
    assert_string_equal(settings_suggest("epoch", SETTINGS_NAMES_KEYS, SW_PRODUCT), "epochs");
    assert_null(settings_suggest("zzzz", SETTINGS_NAMES_KEYS, SW_BODY));
    assert_null(settings_suggest("x", SETTINGS_NAMES_KEYS, 0));
    assert_string_equal(settings_suggest("gama-c", SETTINGS_NAMES_CLI, 0), "gamma-c");
    assert_string_equal(settings_suggest("target_far", SETTINGS_NAMES_FLAGS, 0), "target-far");
    assert_null(settings_suggest("margin", SETTINGS_NAMES_CLI, 0)); /* no such CLI flag */
}

/* ---- OpenAPI ---------------------------------------------------------------- */

static void test_schema(void **state)
{
    (void)state;
    json_t *s = settings_schema(SW_PRODUCT, "d");
    json_t *props = json_object_get(s, "properties");
    int n_api = 0;
    for (int id = 0; id < SETTING_COUNT; id++)
        n_api += (settings_table[id].where & SW_PRODUCT) != 0;
    assert_int_equal(json_object_size(props), n_api);
    assert_true(json_is_false(json_object_get(s, "additionalProperties")));
    assert_string_equal(json_string_value(json_object_get(s, "description")), "d");
    json_t *g = json_object_get(props, "gamma_c");
    assert_string_equal(json_string_value(json_object_get(g, "type")), "integer");
    assert_int_equal(json_integer_value(json_object_get(g, "minimum")), 1);
    assert_int_equal(json_integer_value(json_object_get(g, "maximum")), 64);
    assert_int_equal(json_integer_value(json_object_get(g, "default")), 8);
    assert_non_null(strstr(json_string_value(json_object_get(g, "description")), "the paper's 1"));
    json_t *b = json_object_get(props, "bank");
    assert_int_equal(json_array_size(json_object_get(b, "enum")), 2);
    json_t *h = json_object_get(props, "holdout");
    assert_true(json_real_value(json_object_get(h, "maximum")) == 0.5);
    assert_true(json_is_boolean(json_object_get(json_object_get(props, "activate"), "default")));
    assert_null(json_object_get(props, "ema_beta"));
    json_decref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_sane),        cmocka_unit_test(test_paper_is_engine),
        cmocka_unit_test(test_daemon_differs_only_in_gamma),
        cmocka_unit_test(test_json_reads),        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_json_round_trip),   cmocka_unit_test(test_stored_is_lenient),
        cmocka_unit_test(test_precedence),        cmocka_unit_test(test_apply),
        cmocka_unit_test(test_text_values),       cmocka_unit_test(test_cli_flags),
        cmocka_unit_test(test_cli_usage),         cmocka_unit_test(test_suggest),
        cmocka_unit_test(test_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
