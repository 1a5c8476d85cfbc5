/* test_config.c - defaults, environment and flags of server/config.c. */
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
                          "CFA_MAX_BODY_MB", "CFA_TARGET_FAR", "CFA_LOG_LEVEL"};
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
    assert_int_equal(c.epochs, 5);
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
    assert_int_equal(c.epochs, 7);
    assert_int_equal(c.bank, 1);
    assert_true(c.target_far == 0.01);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_env_then_flags),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_log_level),
        cmocka_unit_test(test_hardening_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
