/* test_config.c - defaults, environment and flags of server/ops/config.c. */
#define _GNU_SOURCE /* open_memstream */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

static void clear_env(void)
{
    const char *vars[] = {"CFA_LISTEN", "CFA_DATA_DIR", "CFA_BACKBONE", "CFA_DEVICE",
                          "CFA_WORKERS", "CFA_CACHE_DIR", "CFA_EPOCHS", "CFA_BANK",
                          "CFA_MAX_BODY_MB", "CFA_TARGET_FAR", "CFA_GAMMA_C", "CFA_HOLDOUT",
                          "CFA_LR", "CFA_ENSEMBLE", "CFA_RESIZE_H", "CFA_LOG_LEVEL"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

static void test_defaults(void **state)
{
    (void)state;
    cfg_t c;
    clear_env();
    setenv("HOME", "/home/u", 1);
    cfg_defaults(&c);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 8080);
    assert_string_equal(c.data_dir, "./var");
    assert_string_equal(c.backbone, "/home/u/.cache/cfa/resnet50_imagenet.pt");
    assert_int_equal(c.n_devices, 1);
    assert_string_equal(c.devices[0], "cpu");
    setenv("CFA_CACHE_DIR", "/cache", 1);
    cfg_defaults(&c);
    assert_string_equal(c.backbone, "/cache/resnet50_imagenet.pt");
    clear_env();
}

static void test_env_then_flags(void **state)
{
    (void)state;
    cfg_t c;
    char err[256];
    clear_env();
    cfg_defaults(&c);
    setenv("CFA_LISTEN", "0.0.0.0:9000", 1);
    setenv("CFA_DEVICE", "cuda:0,cuda:1", 1);
    setenv("CFA_EPOCHS", "5", 1);
    assert_int_equal(cfg_from_env(&c, err, sizeof err), 0);
    assert_string_equal(c.listen_host, "0.0.0.0");
    assert_int_equal(c.listen_port, 9000);
    assert_int_equal(c.n_devices, 2);
    assert_string_equal(c.devices[1], "cuda:1");
    assert_int_equal(c.train.v[SET_epochs].i, 5);
    setenv("CFA_DEVICE", "cuda:0/fp16,cuda:1/bf16,cpu/bf16,cpu/fp32", 1);
    assert_int_equal(cfg_from_env(&c, err, sizeof err), 0);
    assert_int_equal(c.n_devices, 4);
    assert_string_equal(c.devices[0], "cuda:0/fp16");
    assert_string_equal(c.devices[2], "cpu/bf16");
    setenv("CFA_DEVICE", "cuda:0,cuda:1", 1);
    assert_int_equal(cfg_from_env(&c, err, sizeof err), 0);
    char *argv[] = {"cfa-server", "--listen", "127.0.0.1:0", "--epochs=7", "--bank", "ema",
                    "--target-far", "0.01", "--data-dir", "/tmp/x", NULL};
    assert_int_equal(cfg_from_args(&c, 10, argv, err, sizeof err), 0);
    assert_int_equal(c.listen_port, 0);
    assert_int_equal(c.train.v[SET_epochs].i, 7);
    assert_int_equal(c.train.v[SET_bank].i, CFA_BANK_EMA);
    assert_true(c.train.v[SET_target_far].d == 0.01);
    assert_string_equal(c.data_dir, "/tmp/x");
    clear_env();
}

static void test_bad_values(void **state)
{
    (void)state;
    cfg_t c;
    char err[256];
    clear_env();
    const char *bad[][2] = {{"--listen", "1.2.3.4:70000"}, {"--device", "gpu"}, {"--device", "cpu/fp16"},
                            {"--device", "cuda:0/fp8"}, {"--device", "cuda:x/fp16"}, {"--device", "cpu/"},
                            {"--device", "cuda:x"},        {"--workers", "0"},
                            {"--epochs", "many"},          {"--bank", "median"},
                            {"--target-far", "0.9"},       {"--nope", "1"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[] = {"cfa-server", (char *)bad[i][0], (char *)bad[i][1], NULL};
        cfg_defaults(&c);
        err[0] = '\0';
        assert_int_equal(cfg_from_args(&c, 3, argv, err, sizeof err), -1);
        assert_true(strlen(err) > 0);
    }
    setenv("CFA_WORKERS", "-1", 1);
    cfg_defaults(&c);
    assert_int_equal(cfg_from_env(&c, err, sizeof err), -1);
    unsetenv("CFA_WORKERS");
    char *argv[] = {"cfa-server", "extra", NULL};
    cfg_defaults(&c);
    assert_int_equal(cfg_from_args(&c, 2, argv, err, sizeof err), -1);
}

static void test_hardening_flags(void **state)
{
    (void)state;
    cfg_t c;
    char err[256];
    clear_env();
    cfg_defaults(&c);
    assert_true(c.max_images > 0);
    assert_string_equal(c.tls_cert, "");
    char *one[] = {"cfa-server", "--tls-cert", "/c.pem", NULL};
    assert_int_equal(cfg_from_args(&c, 3, one, err, sizeof err), -1);
    assert_non_null(strstr(err, "tls"));
    char *both[] = {"cfa-server", "--tls-cert", "/c.pem", "--tls-key", "/k.pem",
                    "--max-images", "7", NULL};
    cfg_defaults(&c);
    assert_int_equal(cfg_from_args(&c, 7, both, err, sizeof err), 0);
    assert_string_equal(c.tls_cert, "/c.pem");
    assert_string_equal(c.tls_key, "/k.pem");
    assert_int_equal(c.max_images, 7);
    char *zero[] = {"cfa-server", "--max-images", "0", NULL};
    cfg_defaults(&c);
    assert_int_equal(cfg_from_args(&c, 3, zero, err, sizeof err), -1);
}

/* The slow-client limits (api/conn.c): defaults, flags, environment, ranges. */
static void test_slow_client_flags(void **state)
{
    (void)state;
    cfg_t c;
    char err[256];
    clear_env();
    cfg_defaults(&c);
    assert_int_equal(c.header_timeout_s, 10);
    assert_int_equal(c.body_timeout_s, 10);
    assert_int_equal(c.body_min_rate_kb, 64);
    assert_int_equal(c.max_conn_per_ip, 128);
    setenv("CFA_HEADER_TIMEOUT", "4", 1);
    assert_int_equal(cfg_from_env(&c, err, sizeof err), 0);
    unsetenv("CFA_HEADER_TIMEOUT");
    assert_int_equal(c.header_timeout_s, 4);
    char *ok[] = {"cfa-server", "--body-timeout", "5", "--body-min-rate", "100",
                  "--max-connections-per-ip", "0", NULL};
    assert_int_equal(cfg_from_args(&c, 7, ok, err, sizeof err), 0);
    assert_int_equal(c.body_timeout_s, 5);
    assert_int_equal(c.body_min_rate_kb, 100);
    assert_int_equal(c.max_conn_per_ip, 0);
    char *zero_rate[] = {"cfa-server", "--body-min-rate", "0", NULL};
    assert_int_equal(cfg_from_args(&c, 3, zero_rate, err, sizeof err), -1);
    char *zero_header[] = {"cfa-server", "--header-timeout", "0", NULL};
    assert_int_equal(cfg_from_args(&c, 3, zero_header, err, sizeof err), -1);
}

/* The training defaults: the table's DAEMON column, every setting set. */
static void test_training_defaults(void **state)
{
    (void)state;
    cfg_t c;
    clear_env();
    cfg_defaults(&c);
    for (int id = 0; id < SETTING_COUNT; id++)
        assert_true(settings_has(&c.train, (setting_id)id));
    assert_int_equal(c.train.v[SET_gamma_c].i, 8);
    assert_int_equal(c.train.v[SET_gamma_d].i, 8);
    assert_int_equal(c.train.v[SET_epochs].i, 30);
    assert_true(c.train.v[SET_holdout].d == 0.2);
    assert_int_equal(c.train.v[SET_crop_h].i, 0); /* the service inspects the whole image */
    assert_true(c.train.v[SET_target_far].d == 0.01);
    assert_true(c.train.v[SET_activate].i == 1);
}

/* Every training flag of the table is a flag and a variable of the daemon,
 * with the table's ranges; the errors name the flag, its variable and the
 * range; a misspelt flag is refused with the nearest one. */
static void test_training_flags(void **state)
{
    (void)state;
    cfg_t c;
    char err[256];
    clear_env();
    cfg_defaults(&c);
    char *ok[] = {"cfa-server", "--gamma-c", "4", "--gamma-d=2", "--lr", "0.01", "--ensemble",
                  "true", "--seed", "9223372036854775807", "--holdout", "0", "--crop-h", "224",
                  "--crop-w", "224", NULL}; /* CFA++ needs a crop */
    assert_int_equal(cfg_from_args(&c, 16, ok, err, sizeof err), 0);
    assert_int_equal(c.train.v[SET_gamma_c].i, 4);
    assert_int_equal(c.train.v[SET_gamma_d].i, 2);
    assert_true(c.train.v[SET_lr].d == 0.01);
    assert_int_equal(c.train.v[SET_ensemble].i, 1);
    assert_int_equal(c.train.v[SET_seed].i, INT64_MAX);
    assert_true(c.train.v[SET_holdout].d == 0.0);
    setenv("CFA_GAMMA_C", "16", 1);
    setenv("CFA_ENSEMBLE", "0", 1);
    cfg_defaults(&c);
    assert_int_equal(cfg_from_env(&c, err, sizeof err), 0);
    assert_int_equal(c.train.v[SET_gamma_c].i, 16);
    assert_int_equal(c.train.v[SET_ensemble].i, 0);
    setenv("CFA_GAMMA_C", "65", 1);
    assert_int_equal(cfg_from_env(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "--gamma-c / CFA_GAMMA_C"));
    assert_non_null(strstr(err, "[1, 64]"));
    clear_env();
    const struct {
        const char *flag, *value, *expect;
    } bad[] = {
        {"--gamma-c", "0", "[1, 64]"},         {"--gamma-d", "65", "[1, 64]"},
        {"--lr", "0", "[1e-08, 10]"},           {"--holdout", "0.6", "[0, 0.5]"},
        {"--margin", "0.05", "[0.1, 10]"},     {"--ensemble", "yes", "true or false"},
        {"--bank", "median", "one of mean, ema"}, {"--seed", "-1", "got \"-1\""},
        {"--epochs", "1001", "[0, 1000]"},      {"--gama-c", "4", "did you mean --gamma-c?"},
        {"--epoch-count", "4", "(see --help)"}, {"--crop-h", "300", "\"crop_h\" (300)"},
        /* a GNU abbreviation is a typo too: getopt_long alone would take it */
        {"--epoch", "2", "did you mean --epochs?"}, {"--data", "/tmp", "did you mean --data-dir?"},
        {"--gamma-c=", "4", "got \"\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[] = {"cfa-server", (char *)bad[i].flag, (char *)bad[i].value, NULL};
        cfg_defaults(&c);
        err[0] = '\0';
        assert_int_equal(cfg_from_args(&c, 3, argv, err, sizeof err), -1);
        if (strstr(err, bad[i].expect) == NULL)
            fail_msg("%s %s: \"%s\" lacks \"%s\"", bad[i].flag, bad[i].value, err, bad[i].expect);
    }
    /* --activate is a key of POST /train, not a flag: the service activates */
    char *act[] = {"cfa-server", "--activate", "0", NULL};
    cfg_defaults(&c);
    assert_int_equal(cfg_from_args(&c, 3, act, err, sizeof err), -1);
}

/* --help lists every training flag with its variable and default. */
static void test_help_lists_training_flags(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    cfg_usage(f, "cfa-server");
    fclose(f);
    for (int id = 0; id < SETTING_COUNT; id++) {
        char want[64], env[48];
        if (settings_table[id].flag == NULL)
            continue;
        settings_env_name((setting_id)id, env, sizeof env);
        snprintf(want, sizeof want, "--%s=V", settings_table[id].flag);
        assert_non_null(strstr(text, want));
        assert_non_null(strstr(text, env));
    }
    assert_non_null(strstr(text, "(8; the paper: 1; an integer in [1, 64])"));
    free(text);
}

static void test_help(void **state)
{
    (void)state;
    cfg_t c;
    char err[256];
    char *argv[] = {"cfa-server", "--help", NULL};
    cfg_defaults(&c);
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    int rc = cfg_from_args(&c, 2, argv, err, sizeof err);
    fclose(stdout);
    stdout = saved;
    assert_int_equal(rc, 1);
}

/* --log-level / CFA_LOG_LEVEL take the log's level names or their numbers */
static void test_log_level(void **state)
{
    (void)state;
    cfg_t c;
    char err[256];
    clear_env();
    cfg_defaults(&c);
    assert_int_equal(c.log_level, 1);
    setenv("CFA_LOG_LEVEL", "debug", 1);
    assert_int_equal(cfg_from_env(&c, err, sizeof err), 0);
    assert_int_equal(c.log_level, 0);
    char *name[] = {"cfa-server", "--log-level", "warn", NULL};
    assert_int_equal(cfg_from_args(&c, 3, name, err, sizeof err), 0);
    assert_int_equal(c.log_level, 2);
    char *num[] = {"cfa-server", "--log-level=3", NULL};
    assert_int_equal(cfg_from_args(&c, 2, num, err, sizeof err), 0);
    assert_int_equal(c.log_level, 3);
    const char *bad[] = {"4", "verbose", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[] = {"cfa-server", "--log-level", (char *)bad[i], NULL};
        cfg_defaults(&c);
        assert_int_equal(cfg_from_args(&c, 3, argv, err, sizeof err), -1);
        assert_non_null(strstr(err, "--log-level"));
        assert_int_equal(c.log_level, 1);
    }
    clear_env();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_env_then_flags),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_hardening_flags),
        cmocka_unit_test(test_slow_client_flags),
        cmocka_unit_test(test_training_defaults),
        cmocka_unit_test(test_training_flags),
        cmocka_unit_test(test_help_lists_training_flags),
        cmocka_unit_test(test_log_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
