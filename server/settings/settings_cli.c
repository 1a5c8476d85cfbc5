/* settings_cli.c - the cfa CLI's settings flags, from the table (settings.h). */
#include "settings.h"

#include <string.h>

/* 1 if id and the next row share one CLI flag: "H[xW]". */
static int cli_pair(int id)
{
    return id + 1 < SETTING_COUNT && settings_table[id].cli != NULL &&
           settings_table[id + 1].cli != NULL &&
           strcmp(settings_table[id].cli, settings_table[id + 1].cli) == 0;
}

/* "H" or "HxW" into ids id and id + 1. */
static int set_pair(settings_t *s, int id, const char *flag, const char *v, char *err,
                    size_t errlen)
{
    char h[32], e[160];
    const char *x = strchr(v, 'x');
    const char *w = x != NULL ? x + 1 : v;
    size_t n = x != NULL ? (size_t)(x - v) : strlen(v);
    if (n >= sizeof h) {
        snprintf(err, errlen, "--%s: expected H or HxW, got \"%s\"", flag, v);
        return -1;
    }
    memcpy(h, v, n);
    h[n] = '\0';
    if (settings_set_text(s, (setting_id)id, h, e, sizeof e) != 0 ||
        settings_set_text(s, (setting_id)(id + 1), w, e, sizeof e) != 0) {
        snprintf(err, errlen, "--%s: %s (in \"%s\")", flag, e, v);
        return -1;
    }
    return 0;
}

int settings_cli_arg(settings_t *s, int argc, char **argv, int *i, char *err, size_t errlen)
{
    const char *a = argv[*i];
    char e[160];
    if (strncmp(a, "--", 2) != 0)
        return 0;
    int id = settings_find_cli(a + 2);
    if (id < 0)
        return 0;
    if (settings_table[id].type == ST_BOOL) {
        settings_set(s, (setting_id)id, (setting_value){.i = 1});
        return 1;
    }
    if (*i + 1 >= argc) {
        settings_describe((setting_id)id, e, sizeof e);
        snprintf(err, errlen, "%s needs a value (%s)", a, e);
        return -1;
    }
    const char *v = argv[++*i];
    if (cli_pair(id))
        return set_pair(s, id, a + 2, v, err, errlen) == 0 ? 1 : -1;
    if (settings_set_text(s, (setting_id)id, v, e, sizeof e) != 0) {
        snprintf(err, errlen, "%s: %s", a, e);
        return -1;
    }
    return 1;
}

void settings_cli_usage(FILE *f)
{
    static const char *const metavar[] = {[ST_INT] = "N", [ST_I64] = "N", [ST_NUM] = "X",
                                          [ST_BOOL] = "", [ST_BANK] = "mean|ema"};
    for (int id = 0; id < SETTING_COUNT; id++) {
        const setting_def *d = &settings_table[id];
        char left[48], def[64], range[64];
        if (d->cli == NULL)
            continue;
        settings_format((setting_id)id, d->paper, def, sizeof def);
        if (cli_pair(id)) {
            char w[32];
            settings_format((setting_id)(id + 1), settings_table[id + 1].paper, w, sizeof w);
            snprintf(left, sizeof left, "--%s H[xW]", d->cli);
            snprintf(def + strlen(def), sizeof def - strlen(def), "x%s", w);
        } else {
            snprintf(left, sizeof left, "--%s %s", d->cli, metavar[d->type]);
        }
        settings_describe((setting_id)id, range, sizeof range);
        if (d->type == ST_BOOL)
            fprintf(f, "  %-20s %s (a switch)\n", left, d->doc);
        else
            fprintf(f, "  %-20s %s (default %s; %s)\n", left, d->doc, def, range);
        if (cli_pair(id))
            id++;
    }
}
