/* settings_schema.c - the OpenAPI schema of a settings object, from the
 * table (settings.h); api/gen_settings_schema.c puts it into openapi.json. */
#include "settings.h"

#include <string.h>

/* "doc. Server default 8 (--gamma-c, CFA_GAMMA_C); the paper's 1." */
static json_t *description(setting_id id)
{
    const setting_def *d = &settings_table[id];
    char text[512], dv[32], pv[32], env[48];
    size_t n;
    settings_format(id, d->daemon, dv, sizeof dv);
    settings_format(id, d->paper, pv, sizeof pv);
    n = (size_t)snprintf(text, sizeof text, "%s. Server default %s", d->doc, dv);
    if (d->flag != NULL && n < sizeof text) {
        settings_env_name(id, env, sizeof env);
        n += (size_t)snprintf(text + n, sizeof text - n, " (--%s, %s)", d->flag, env);
    }
    if (memcmp(&d->paper, &d->daemon, sizeof d->paper) != 0 && n < sizeof text)
        n += (size_t)snprintf(text + n, sizeof text - n, "; the paper's %s", pv);
    if (n < sizeof text)
        snprintf(text + n, sizeof text - n, ".");
    return json_string(text);
}

static json_t *property(setting_id id)
{
    const setting_def *d = &settings_table[id];
    json_t *p = json_object();
    switch (d->type) {
    case ST_INT:
    case ST_I64:
        json_object_set_new(p, "type", json_string("integer"));
        json_object_set_new(p, "minimum", json_integer(d->imin));
        json_object_set_new(p, "maximum", json_integer(d->imax));
        break;
    case ST_NUM:
        json_object_set_new(p, "type", json_string("number"));
        json_object_set_new(p, "minimum", json_real(d->dmin));
        json_object_set_new(p, "maximum", json_real(d->dmax));
        break;
    case ST_BOOL:
        json_object_set_new(p, "type", json_string("boolean"));
        break;
    case ST_BANK:
        json_object_set_new(p, "type", json_string("string"));
        json_object_set_new(p, "enum", json_pack("[s,s]", "mean", "ema"));
        break;
    }
    json_object_set_new(p, "default", settings_value_json(id, d->daemon));
    json_object_set_new(p, "description", description(id));
    return p;
}

json_t *settings_schema(unsigned need, const char *desc)
{
    json_t *props = json_object();
    for (int id = 0; id < SETTING_COUNT; id++)
        if ((settings_table[id].where & need) == need)
            json_object_set_new(props, settings_table[id].key, property((setting_id)id));
    json_t *o = json_pack("{s:s,s:o,s:b}", "type", "object", "properties", props,
                          "additionalProperties", 0);
    if (o != NULL && desc != NULL)
        json_object_set_new(o, "description", json_string(desc));
    return o;
}
