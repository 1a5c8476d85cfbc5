/* auth.c - the first admin key (api.h, api_bootstrap_admin).
 *
 * A fresh database has no key, so nobody could create one through the API:
 * on the first start the daemon installs CFA_ADMIN_KEY, or else generates a
 * key and leaves it in <data_dir>/admin.key for the operator. Only the key's
 * hash is stored; that file is the one place the generated key exists, so it
 * is written durably and readable by the daemon's user only. */
#define _GNU_SOURCE /* explicit_bzero */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base_file.h"
#include "base_log.h"

/* Generates an admin key into <data_dir>/admin.key (mode 0600). */
static int write_generated_key(store_t *st, const char *data_dir, char *err, size_t errlen)
{
    char key[STORE_KEY_MAX + 1], path[2048], why[2600];
    store_status ss = store_key_create(st, "bootstrap admin", STORE_ROLE_ADMIN, NULL, key, NULL,
                                       NULL);
    if (ss != STORE_OK) {
        snprintf(err, errlen, "creating the admin key: %s", store_strerror(ss));
        return -1;
    }
    if (snprintf(path, sizeof path, "%s/admin.key", data_dir) >= (int)sizeof path) {
        snprintf(err, errlen, "data directory path too long: %s", data_dir);
        return -1;
    }
    size_t kl = strlen(key);
    key[kl] = '\n'; /* a text file: cat admin.key */
    int rc = file_write_durable(path, key, kl + 1, 0600, why, sizeof why);
    explicit_bzero(key, sizeof key); /* the plain key lives on only in the file */
    if (rc != 0) {
        snprintf(err, errlen, "writing the admin key: %s", why);
        return -1;
    }
    log_info("api", "generated an admin key into %s (mode 0600)", path);
    return 0;
}

int api_bootstrap_admin(store_t *st, const char *data_dir, char *err, size_t errlen)
{
    int64_t n = 0;
    store_status ss = store_key_count_active(st, &n);
    if (ss != STORE_OK) {
        snprintf(err, errlen, "counting keys: %s", store_strerror(ss));
        return -1;
    }
    if (n > 0)
        return 0;
    const char *env = getenv("CFA_ADMIN_KEY");
    if (env == NULL || *env == '\0')
        return write_generated_key(st, data_dir, err, errlen);
    char key[STORE_KEY_MAX];
    ss = store_key_create(st, "bootstrap admin (CFA_ADMIN_KEY)", STORE_ROLE_ADMIN, env, key,
                          NULL, NULL);
    if (ss != STORE_OK) {
        snprintf(err, errlen, "CFA_ADMIN_KEY refused (16-256 printable characters, no spaces): %s",
                 store_strerror(ss));
        return -1;
    }
    log_info("api", "installed the admin key from CFA_ADMIN_KEY");
    return 0;
}
