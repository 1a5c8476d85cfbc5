/* gen_settings_schema.c - the OpenAPI schemas of the training settings,
 * made from their table (server/settings/include/settings.def).
 *
 *   gen_settings_schema [OUT]           prints {"TrainingSettings": ...,
 *                                       "TrainRequest": ...} (or writes OUT)
 *   gen_settings_schema --merge IN OUT  writes the OpenAPI document IN with
 *                                       those two in components.schemas
 *
 * The build embeds the merged document (api/CMakeLists.txt), so the schema
 * served at /v1/openapi.json is the table's even before the committed
 * api/openapi.json is regenerated; lint.openapi fails until it is
 * (`cmake --build build --target openapi_json`). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "settings.h"

static json_t *schemas(void)
{
    return json_pack(
        "{s:o,s:o}", "TrainingSettings",
        settings_schema(SW_PRODUCT,
                        "A product's training settings: each overrides the server's default "
                        "(cfa-server --help), and a POST /train body overrides them. A key "
                        "not listed here, or a value out of its range, is a 400 naming it."),
        "TrainRequest",
        settings_schema(SW_BODY,
                        "Body of POST /train, for this job only: over the product's settings, "
                        "over the server's defaults. A job's params are these keys resolved "
                        "(all of them, as the job trains with them). A key not listed here, or "
                        "a value out of its range, is a 400 naming it."));
}

static int merge(const char *in, const char *out)
{
    json_error_t e;
    json_t *doc = json_load_file(in, 0, &e);
    if (doc == NULL) {
        fprintf(stderr, "gen_settings_schema: %s:%d: %s\n", in, e.line, e.text);
        return 1;
    }
    json_t *dst = json_object_get(json_object_get(doc, "components"), "schemas");
    json_t *add = schemas();
    if (!json_is_object(dst) || add == NULL || json_object_update(dst, add) != 0 ||
        json_dump_file(doc, out, JSON_INDENT(1)) != 0) {
        fprintf(stderr, "gen_settings_schema: cannot merge %s into %s\n", in, out);
        json_decref(add);
        json_decref(doc);
        return 1;
    }
    json_decref(add);
    json_decref(doc);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--merge") == 0)
        return merge(argv[2], argv[3]);
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: gen_settings_schema [OUT] | --merge IN OUT\n");
        return 2;
    }
    json_t *s = schemas();
    int rc = s == NULL ? -1
             : argc == 2 ? json_dump_file(s, argv[1], JSON_INDENT(1))
                         : json_dumpf(s, stdout, JSON_INDENT(1));
    json_decref(s);
    if (rc != 0) {
        fprintf(stderr, "gen_settings_schema: cannot write the schemas\n");
        return 1;
    }
    if (argc == 1)
        putchar('\n');
    return 0;
}
