/*
 * spec.c - a sink's settings: the parser of POST/PATCH /v1/sinks bodies
 * (outside input: fuzzed by tests/fuzz/fuzz_sink_spec.c), the JSON the store
 * keeps, and the expansion of MQTT topic templates.
 */
#define _GNU_SOURCE
#include "sinks.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int fail(char *err, size_t errlen, char *field, size_t fieldlen, const char *name,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int fail(char *err, size_t errlen, char *field, size_t fieldlen, const char *name,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    snprintf(field, fieldlen, "%s", name);
    return -1;
}

/* Printable ASCII without spaces (URLs and hosts). */
static int plain_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static int valid_url(const char *u)
{
    if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0)
        return 0;
    const char *host = strstr(u, "://") + 3;
    return *host != '\0' && *host != '/' && plain_ascii(u);
}

/* A template: text without MQTT wildcards or NUL, and placeholders only of
 * {product}, {decision} and {event}. */
static int valid_topic(const char *t)
{
    if (*t == '\0' || strchr(t, '+') || strchr(t, '#'))
        return 0;
    char out[SINK_TOPIC_MAX * 4];
    return sink_topic_expand(t, "p", "OK", "inspection", out, sizeof out) == 0;
}

/* Each name of the array is "inspection", "inspection.ng" or an event kind;
 * joined with commas into out. */
static int parse_events(json_t *a, char *out, size_t cap, char *bad, size_t badcap)
{
    size_t i, used = 0;
    json_t *v;
    out[0] = '\0';
    if (!json_is_array(a) || json_array_size(a) == 0)
        return -1;
    json_array_foreach(a, i, v) {
        const char *name = json_string_value(v);
        if (name == NULL || (strcmp(name, "inspection") != 0 &&
                             strcmp(name, "inspection.ng") != 0 &&
                             store_event_kind_index(name) < 0)) {
            snprintf(bad, badcap, "%s", name ? name : "(not a string)");
            return -1;
        }
        size_t len = strlen(name);
        if (used + len + 2 > cap)
            return -1;
        if (used > 0)
            out[used++] = ',';
        memcpy(out + used, name, len + 1);
        used += len;
    }
    return 0;
}

/* A string property of at most max bytes into dst; absent leaves dst. */
static int take_string(json_t *body, const char *name, char *dst, size_t max, int allow_null,
                       char *err, size_t errlen, char *field, size_t fieldlen)
{
    json_t *v = json_object_get(body, name);
    if (v == NULL)
        return 0;
    if (json_is_null(v) && allow_null) {
        dst[0] = '\0';
        return 0;
    }
    if (!json_is_string(v))
        return fail(err, errlen, field, fieldlen, name, "%s must be a string", name);
    if (json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v))
        return fail(err, errlen, field, fieldlen, name, "%s must be at most %zu bytes, without NUL",
                    name, max);
    snprintf(dst, max + 1, "%s", json_string_value(v));
    return 0;
}

static int take_int(json_t *body, const char *name, int lo, int hi, int *dst, char *err,
                    size_t errlen, char *field, size_t fieldlen)
{
    json_t *v = json_object_get(body, name);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return fail(err, errlen, field, fieldlen, name, "%s must be an integer from %d to %d",
                    name, lo, hi);
    *dst = (int)json_integer_value(v);
    return 0;
}

static const char *const WEBHOOK_KEYS[] = {"kind", "name", "product", "events", "enabled",
                                           "url", "secret", "timeout_ms", NULL};
static const char *const MQTT_KEYS[] = {"kind", "name",  "product", "events", "enabled",
                                        "host", "port",  "topic",   "qos",    NULL};

static int known_key(const char *const *keys, const char *k)
{
    for (; *keys; keys++)
        if (strcmp(*keys, k) == 0)
            return 1;
    return 0;
}

/* The common properties: kind, name, product, events, enabled. */
static int parse_common(json_t *body, int patch, sink_spec *s, char *err, size_t errlen,
                        char *field, size_t fieldlen)
{
    char kind[STORE_SINK_KIND_MAX] = "";
    if (take_string(body, "kind", kind, sizeof kind - 1, 0, err, errlen, field, fieldlen) != 0)
        return -1;
    if (!patch && strcmp(kind, "webhook") != 0 && strcmp(kind, "mqtt") != 0)
        return fail(err, errlen, field, fieldlen, "kind", "kind must be \"webhook\" or \"mqtt\"");
    if (patch && kind[0] && strcmp(kind, s->kind) != 0)
        return fail(err, errlen, field, fieldlen, "kind", "the kind of a sink cannot change");
    if (!patch)
        snprintf(s->kind, sizeof s->kind, "%s", kind);
    const char *const *keys = strcmp(s->kind, "mqtt") == 0 ? MQTT_KEYS : WEBHOOK_KEYS;
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        if (!known_key(keys, k))
            return fail(err, errlen, field, fieldlen, k, "unknown property %s of a %s sink", k,
                        s->kind);
    }
    if (take_string(body, "name", s->name, SINK_NAME_MAX, 0, err, errlen, field, fieldlen) != 0 ||
        take_string(body, "product", s->product, STORE_PRODUCT_ID_MAX - 1, 1, err, errlen, field,
                    fieldlen) != 0)
        return -1;
    if (s->product[0] && !store_valid_product_id(s->product))
        return fail(err, errlen, field, fieldlen, "product", "product must be a product id or null");
    json_t *en = json_object_get(body, "enabled");
    if (en != NULL && !json_is_boolean(en))
        return fail(err, errlen, field, fieldlen, "enabled", "enabled must be true or false");
    if (en != NULL)
        s->enabled = json_is_true(en);
    json_t *ev = json_object_get(body, "events");
    char bad[64] = "";
    if ((ev != NULL || !patch) &&
        parse_events(ev, s->events, sizeof s->events, bad, sizeof bad) != 0)
        return fail(err, errlen, field, fieldlen, "events",
                    "events must be a non-empty array of inspection, inspection.ng or event "
                    "kinds%s%s",
                    bad[0] ? "; unknown: " : "", bad);
    return 0;
}

static int parse_webhook(json_t *body, int patch, sink_spec *s, char *err, size_t errlen,
                         char *field, size_t fieldlen)
{
    if (take_string(body, "url", s->url, SINK_URL_MAX, 0, err, errlen, field, fieldlen) != 0 ||
        take_string(body, "secret", s->secret, SINK_SECRET_MAX, 1, err, errlen, field,
                    fieldlen) != 0 ||
        take_int(body, "timeout_ms", 100, 120000, &s->timeout_ms, err, errlen, field,
                 fieldlen) != 0)
        return -1;
    s->secret_given = json_object_get(body, "secret") != NULL;
    if ((!patch || json_object_get(body, "url")) && !valid_url(s->url))
        return fail(err, errlen, field, fieldlen, "url",
                    "url must be an http:// or https:// URL with a host, in printable ASCII");
    return 0;
}

static int parse_mqtt(json_t *body, int patch, sink_spec *s, char *err, size_t errlen,
                      char *field, size_t fieldlen)
{
    if (!patch) {
        s->port = 1883;
        s->qos = 1;
    }
    if (take_string(body, "host", s->host, SINK_HOST_MAX, 0, err, errlen, field, fieldlen) != 0 ||
        take_string(body, "topic", s->topic, SINK_TOPIC_MAX, 0, err, errlen, field, fieldlen) != 0 ||
        take_int(body, "port", 1, 65535, &s->port, err, errlen, field, fieldlen) != 0 ||
        take_int(body, "qos", 1, 1, &s->qos, err, errlen, field, fieldlen) != 0)
        return -1;
    if (s->host[0] == '\0' || !plain_ascii(s->host))
        return fail(err, errlen, field, fieldlen, "host", "host must be a host name or address");
    if (!valid_topic(s->topic))
        return fail(err, errlen, field, fieldlen, "topic",
                    "topic must be a template without + or #, with only {product}, {decision} "
                    "and {event}");
    return 0;
}

int sink_spec_parse(const char *body, size_t len, int patch, sink_spec *spec, char *err,
                    size_t errlen, char *field, size_t fieldlen)
{
    json_error_t je;
    if (!patch) {
        memset(spec, 0, sizeof *spec);
        spec->enabled = 1;
    }
    spec->secret_given = 0;
    json_t *o = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return fail(err, errlen, field, fieldlen, "", "the body must be a JSON object");
    }
    int r = parse_common(o, patch, spec, err, errlen, field, fieldlen);
    if (r == 0)
        r = strcmp(spec->kind, "mqtt") == 0
                ? parse_mqtt(o, patch, spec, err, errlen, field, fieldlen)
                : parse_webhook(o, patch, spec, err, errlen, field, fieldlen);
    json_decref(o);
    return r;
}

char *sink_spec_config_json(const sink_spec *s)
{
    json_t *o = strcmp(s->kind, "mqtt") == 0
                    ? json_pack("{s:s, s:i, s:s, s:i}", "host", s->host, "port", s->port,
                                "topic", s->topic, "qos", s->qos)
                    : json_pack("{s:s, s:i}", "url", s->url, "timeout_ms", s->timeout_ms);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

int sink_spec_from_store(const store_sink_t *k, sink_spec *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->kind, sizeof s->kind, "%s", k->kind);
    snprintf(s->name, sizeof s->name, "%s", k->name ? k->name : "");
    snprintf(s->product, sizeof s->product, "%s", k->product);
    snprintf(s->events, sizeof s->events, "%s", k->events ? k->events : "");
    s->enabled = k->enabled;
    json_error_t je;
    json_t *o = json_loads(k->config_json ? k->config_json : "{}", 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return -1;
    }
    const char *url = json_string_value(json_object_get(o, "url"));
    const char *host = json_string_value(json_object_get(o, "host"));
    const char *topic = json_string_value(json_object_get(o, "topic"));
    snprintf(s->url, sizeof s->url, "%s", url ? url : "");
    snprintf(s->host, sizeof s->host, "%s", host ? host : "");
    snprintf(s->topic, sizeof s->topic, "%s", topic ? topic : "");
    s->port = (int)json_integer_value(json_object_get(o, "port"));
    s->qos = (int)json_integer_value(json_object_get(o, "qos"));
    s->timeout_ms = (int)json_integer_value(json_object_get(o, "timeout_ms"));
    json_decref(o);
    return 0;
}

/* A value put into a topic must stay one level of it. */
static int topic_value_ok(const char *v)
{
    return strpbrk(v, "+#/") == NULL;
}

int sink_topic_expand(const char *tmpl, const char *product, const char *decision,
                      const char *event, char *out, size_t cap)
{
    static const char *const names[] = {"{product}", "{decision}", "{event}"};
    const char *values[] = {product && *product ? product : "_",
                            decision && *decision ? decision : "_", event ? event : "_"};
    size_t used = 0;
    if (cap == 0)
        return -1;
    while (*tmpl) {
        size_t take = 1;
        const char *val = NULL;
        for (int i = 0; i < 3 && *tmpl == '{'; i++)
            if (strncmp(tmpl, names[i], strlen(names[i])) == 0) {
                take = strlen(names[i]);
                val = values[i];
            }
        if (*tmpl == '{' && val == NULL)
            return -1; /* an unknown placeholder is a mistake, not text */
        if (val != NULL && !topic_value_ok(val))
            return -1;
        const char *src = val ? val : tmpl;
        size_t n = val ? strlen(val) : 1;
        if (used + n + 1 > cap)
            return -1;
        memcpy(out + used, src, n);
        used += n;
        tmpl += take;
    }
    out[used] = '\0';
    return 0;
}
