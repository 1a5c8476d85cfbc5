/*
 * keys.c - the api_keys table. A key is never stored in clear: only
 * sha256(salt || key) with a random 16-byte salt, plus a short unsalted
 * fingerprint ("lookup") that finds the candidate row without scanning.
 * Generated keys are random (256 bits), so one salted SHA-256 suffices.
 */
#include "store_int.h"

#include "sha256.h"

static const char *const role_names[] = {
    [STORE_ROLE_NONE] = NULL,
    [STORE_ROLE_INSPECT] = "inspect",
    [STORE_ROLE_OPERATE] = "operate",
    [STORE_ROLE_ADMIN] = "admin",
};

const char *store_role_name(store_role r)
{
    if ((int)r < STORE_ROLE_INSPECT || (int)r > STORE_ROLE_ADMIN)
        return NULL;
    return role_names[r];
}

int store_role_parse(const char *name, store_role *r)
{
    if (!name)
        return -1;
    for (int i = STORE_ROLE_INSPECT; i <= STORE_ROLE_ADMIN; i++) {
        if (strcmp(name, role_names[i]) == 0) {
            if (r)
                *r = (store_role)i;
            return 0;
        }
    }
    return -1;
}

/* 16-256 printable ASCII characters, no spaces. */
static int valid_key_text(const char *k)
{
    if (!k)
        return 0;
    size_t n = strlen(k);
    if (n < 16 || n > STORE_KEY_MAX - 1)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (k[i] <= 0x20 || k[i] >= 0x7f)
            return 0;
    return 1;
}

/* Short unsalted fingerprint used only to find the candidate row. */
static void key_lookup(const char *key, char out[17])
{
    static const char domain[] = "cfa-key-lookup:";
    sha256_ctx c;
    uint8_t d[SHA256_DIGEST_LEN];
    sha256_init(&c);
    sha256_update(&c, domain, sizeof domain - 1);
    sha256_update(&c, key, strlen(key));
    sha256_final(&c, d);
    sha256_hex(d, 8, out);
}

static void key_hash(const uint8_t *salt, size_t salt_len, const char *key,
                     uint8_t out[SHA256_DIGEST_LEN])
{
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, salt, salt_len);
    sha256_update(&c, key, strlen(key));
    sha256_final(&c, out);
}

/* Compares without an early exit, so timing does not reveal how much of a
 * hash matched. */
static int ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    volatile uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= (uint8_t)(a[i] ^ b[i]);
    return acc == 0;
}

#define KEY_COLS "id, name, role, created_at, revoked_at"

static void key_from_row(sqlite3_stmt *s, void *elem, void *ctx)
{
    (void)ctx;
    store_key_t *k = elem;
    db_col_copy(s, 0, k->id, sizeof k->id);
    k->name = db_col_dup(s, 1, "");
    store_role_parse((const char *)sqlite3_column_text(s, 2), &k->role);
    k->created_at = sqlite3_column_int64(s, 3);
    k->revoked_at = sqlite3_column_int64(s, 4);
}

static void key_clear(void *elem)
{
    store_key_t *k = elem;
    free(k->name);
}

/* The cursor key is the id: store_key_list makes it "<created_at>.<id>". */
static const db_rowtype KEY_ROWS = {sizeof(store_key_t), key_from_row, key_clear,
                                    offsetof(store_key_t, id), STORE_ID_LEN};

DB_DEFINE_CLEAR_FREE(store_key_t, store_key_clear, store_keys_free, KEY_ROWS)

/* ---------------------------------------------------------------- create */

/* The secret of a new key: the given one, or "cfa_" + 64 random hex. */
static store_status key_secret(const char *key, char secret[STORE_KEY_MAX])
{
    if (key) {
        copy_str(secret, STORE_KEY_MAX, key);
        return STORE_OK;
    }
    uint8_t b[32];
    char hex[65];
    if (store_random_bytes(b, sizeof b) != 0)
        return STORE_ERR_IO;
    sha256_hex(b, sizeof b, hex);
    snprintf(secret, STORE_KEY_MAX, "cfa_%s", hex);
    return STORE_OK;
}

/* A key row being created: everything but the secret itself. */
typedef struct {
    char id[STORE_ID_LEN];
    const char *name;
    store_role role;
    uint8_t salt[16];
    uint8_t hash[SHA256_DIGEST_LEN];
    char lookup[17];
    int64_t created_at;
} key_row;

/* Inserts k and appends ev (may be NULL) in one write transaction; ev's
 * after_fn gets the key as the API shows it. */
static store_status key_row_insert(store_t *st, const key_row *k, store_event_t *ev)
{
    static const char SQL[] = "INSERT INTO api_keys(id, name, role, salt, hash, lookup, "
                              "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    db_query q = {SQL,
                  {DB_TEXT(k->id), DB_TEXT(k->name), DB_TEXT(store_role_name(k->role)),
                   DB_BLOB(k->salt, sizeof k->salt), DB_BLOB(k->hash, sizeof k->hash),
                   DB_TEXT(k->lookup), DB_INT(k->created_at)},
                  NULL, 0};
    store_key_t view = {.name = (char *)k->name, .role = k->role, .created_at = k->created_at};
    copy_str(view.id, sizeof view.id, k->id);
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    r = db_wrun(st, &q);
    if (r == STORE_OK)
        r = store_event_row_w(st, ev, &view);
    return store_wend_event(st, r, ev);
}

store_status store_key_create(store_t *st, const char *name, store_role role, const char *key,
                              char key_out[STORE_KEY_MAX], store_key_t *out,
                              store_event_t *ev)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (key_out)
        key_out[0] = '\0';
    if (!store_role_name(role) || (key && !valid_key_text(key)))
        return STORE_ERR_INVALID;
    char secret[STORE_KEY_MAX];
    key_row k = {.name = name ? name : "", .role = role};
    store_status r = key_secret(key, secret);
    if (r != STORE_OK)
        return r;
    if (store_random_id(k.id) != 0 || store_random_bytes(k.salt, sizeof k.salt) != 0) {
        memset(secret, 0, sizeof secret);
        return STORE_ERR_IO;
    }
    key_hash(k.salt, sizeof k.salt, secret, k.hash);
    key_lookup(secret, k.lookup);
    k.created_at = store_now_ms();
    r = key_row_insert(st, &k, ev);
    if (r == STORE_OK && key_out)
        copy_str(key_out, STORE_KEY_MAX, secret);
    if (r == STORE_OK && out) {
        copy_str(out->id, sizeof out->id, k.id);
        out->name = xstrdup(k.name);
        out->role = role;
        out->created_at = k.created_at;
    }
    /* the clear key leaves memory with the caller's copy only */
    memset(secret, 0, sizeof secret);
    return r;
}

/* ------------------------------------------------------- verify and list */

/* 1 if the row's salted hash is that of presented. */
static int key_row_matches(sqlite3_stmt *s, const char *presented)
{
    const uint8_t *salt = sqlite3_column_blob(s, 5);
    int salt_len = sqlite3_column_bytes(s, 5);
    const uint8_t *hash = sqlite3_column_blob(s, 6);
    int hash_len = sqlite3_column_bytes(s, 6);
    if (!salt || !hash || hash_len != SHA256_DIGEST_LEN)
        return 0;
    uint8_t h[SHA256_DIGEST_LEN];
    key_hash(salt, (size_t)salt_len, presented, h);
    return ct_equal(h, hash, SHA256_DIGEST_LEN);
}

store_status store_key_verify(store_t *st, const char *presented, store_key_t *out)
{
    static const char SQL[] = "SELECT " KEY_COLS ", salt, hash FROM api_keys "
                              "WHERE lookup = ?1 AND revoked_at IS NULL";
    if (out)
        memset(out, 0, sizeof *out);
    if (!valid_key_text(presented))
        return STORE_ERR_NOT_FOUND;
    char lookup[17];
    key_lookup(presented, lookup);
    conn_t *c = db_racquire(st);
    sqlite3_stmt *s = db_prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        sqlite3_bind_text(s, 1, lookup, -1, SQLITE_TRANSIENT);
        r = STORE_ERR_NOT_FOUND;
        int rc;
        while ((rc = db_step(s)) == SQLITE_ROW) {
            if (key_row_matches(s, presented)) {
                if (out)
                    key_from_row(s, out, NULL);
                r = STORE_OK;
                break;
            }
        }
        if (r != STORE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
            r = db_map_rc(c->db, rc);
        db_done(s);
    }
    db_rrelease(st, c);
    return r;
}

store_status store_key_list(store_t *st, size_t limit, const char *after, store_key_t **out,
                            size_t *n, char next[STORE_CURSOR_LEN])
{
    static const char SQL[] = "SELECT " KEY_COLS " FROM api_keys WHERE "
                              "?2 IS NULL OR created_at > ?2 OR (created_at = ?2 AND id > ?3) "
                              "ORDER BY created_at, id LIMIT ?1";
    int64_t after_ms = 0;
    char after_id[STORE_ID_LEN] = "";
    if (!db_list_reset(out, n, next))
        return STORE_ERR_INVALID;
    if (after && *after && store_cursor_parse(after, &after_ms, after_id) != 0)
        return STORE_ERR_INVALID;
    limit = db_list_limit(limit);
    db_query q = {SQL, {DB_INT(limit + 1), after_id[0] ? DB_INT(after_ms) : DB_NULL,
                        DB_TEXT(after_id)}, NULL, limit};
    store_status r = db_list(st, &q, &KEY_ROWS, out, n, next);
    if (r == STORE_OK && next && next[0])
        store_cursor_format((*out)[*n - 1].created_at, (*out)[*n - 1].id, next);
    return r;
}

/* ---------------------------------------------------------------- revoke */

/* Inside the write transaction: whether id is the last active admin key
 * (1), not (0), or the query failed (-1). */
static int key_is_last_admin_w(store_t *st, const char *id)
{
    static const char SQL[] =
        "SELECT role = 'admin' AND (SELECT count(*) FROM api_keys WHERE role = 'admin' "
        "AND revoked_at IS NULL) <= 1 FROM api_keys WHERE id = ?1 AND revoked_at IS NULL";
    sqlite3_stmt *s = db_prep(&st->w, SQL);
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    int rc = db_step(s);
    int last = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) != 0 : rc == SQLITE_DONE ? 0 : -1;
    db_done(s);
    return last;
}

store_status store_key_revoke(store_t *st, const char *id, store_event_t *ev)
{
    static const char SQL[] =
        "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL";
    if (!store_valid_id(id))
        return STORE_ERR_INVALID;
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    /* checked and revoked in one transaction: two admins revoking each
     * other at once cannot both succeed */
    int last = key_is_last_admin_w(st, id);
    r = last < 0 ? STORE_ERR_DB : last ? STORE_ERR_CONFLICT : STORE_OK;
    db_query q = {SQL, {DB_TEXT(id), DB_INT(store_now_ms())}, NULL, 0};
    if (r == STORE_OK)
        r = db_wrun_changing(st, &q);
    if (r == STORE_OK)
        r = store_event_row_w(st, ev, NULL);
    return store_wend_event(st, r, ev);
}

store_status store_key_count_active(store_t *st, int64_t *n)
{
    static const char SQL[] = "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL";
    return db_count(st, SQL, NULL, n);
}
