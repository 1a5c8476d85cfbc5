/* fuzz_sink_spec.c - the bodies of POST and PATCH /v1/sinks
 * (server/sinks/spec.c, sink_spec_parse, as api/sinks.c calls it) and MQTT
 * topic template expansion, with invariants: what a POST accepts is stored
 * as config JSON that reads back to the same settings, is accepted again as
 * a PATCH over itself, and its topic expands to a topic without wildcards. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks.h"

static void check_topic(const char *tmpl, const uint8_t *data, size_t size)
{
    char product[STORE_PRODUCT_ID_MAX], out[SINK_TOPIC_MAX * 4];
    size_t n = size < sizeof product - 1 ? size : sizeof product - 1;
    memcpy(product, data, n);
    product[n] = '\0';
    /* a value never brings a wildcard into a template that had none */
    int clean = strpbrk(tmpl, "+#") == NULL;
    if (sink_topic_expand(tmpl, product, "NG", "inspection", out, sizeof out) == 0 &&
        ((clean && strpbrk(out, "+#") != NULL) || strlen(out) >= sizeof out))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sink_spec s, back;
    char err[256], field[64];
    /* the raw bytes as a template too: the expansion must not overrun */
    char tmpl[SINK_TOPIC_MAX + 1];
    size_t tn = size < SINK_TOPIC_MAX ? size : SINK_TOPIC_MAX;
    memcpy(tmpl, data, tn);
    tmpl[tn] = '\0';
    check_topic(tmpl, data, size);
    if (sink_spec_parse((const char *)data, size, 0, &s, err, sizeof err, field, sizeof field) != 0) {
        if (err[0] == '\0')
            abort(); /* a refusal always says why */
        return 0;
    }
    char *config = sink_spec_config_json(&s);
    store_sink_t k;
    memset(&k, 0, sizeof k);
    snprintf(k.kind, sizeof k.kind, "%s", s.kind);
    snprintf(k.product, sizeof k.product, "%s", s.product);
    k.name = s.name;
    k.events = s.events;
    k.config_json = config;
    k.enabled = s.enabled;
    if (config == NULL || sink_spec_from_store(&k, &back) != 0 || strcmp(back.url, s.url) != 0 ||
        strcmp(back.host, s.host) != 0 || strcmp(back.topic, s.topic) != 0 ||
        back.port != s.port || strcmp(back.events, s.events) != 0)
        abort();
    if (strcmp(s.kind, "mqtt") == 0)
        check_topic(s.topic, data, size);
    /* the same body as a PATCH over what it made (kind may be repeated) */
    if (sink_spec_parse((const char *)data, size, 1, &back, err, sizeof err, field,
                        sizeof field) != 0)
        abort();
    free(config);
    return 0;
}
