/* The engine's header compiles as C and its plain-C parts link and work. */
#include "cfa.h"

#include <stdio.h>
#include <string.h>

int main(void)
{
    int failed = 0;
    cfa_params p = cfa_default_params();
    if (p.K != 3 || p.J != 3 || p.epochs != 30 || p.batch_size != 4 || p.crop_h != 224)
        failed++, fprintf(stderr, "default params differ from the paper's\n");
    if (strcmp(cfa_status_str(CFA_OK), "ok") != 0 || cfa_status_str(CFA_ERR_BACKBONE_MISMATCH)[0] == 0)
        failed++, fprintf(stderr, "status strings\n");
    cfa_model *m = NULL;
    const char junk[] = "not a model";
    if (cfa_model_load(junk, sizeof junk, NULL, &m) != CFA_ERR_FORMAT || m != NULL)
        failed++, fprintf(stderr, "junk accepted as a model\n");
    if (strlen(cfa_last_error()) == 0)
        failed++, fprintf(stderr, "no error message kept\n");
    cfa_model_free(NULL);
    cfa_backbone_free(NULL);
    cfa_backbone *bb = NULL;
    if (cfa_backbone_load("/nonexistent/backbone.pt", "cpu", &bb) == CFA_OK || bb)
        failed++, fprintf(stderr, "missing backbone loaded\n");
    if (cfa_backbone_load("/nonexistent/backbone.pt", "tpu:7", &bb) != CFA_ERR_DEVICE)
        failed++, fprintf(stderr, "bad device not refused\n");
    /* the version: header and library agree, the number is the string's */
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", CFA_VERSION_MAJOR, CFA_VERSION_MINOR, CFA_VERSION_PATCH);
    if (strcmp(v, CFA_VERSION_STRING) != 0 || strcmp(cfa_version(), CFA_VERSION_STRING) != 0)
        failed++, fprintf(stderr, "version string: header %s, library %s\n", CFA_VERSION_STRING, cfa_version());
    if (cfa_version_number() != CFA_VERSION_NUMBER ||
        CFA_VERSION_NUMBER != CFA_VERSION_MAJOR * 10000 + CFA_VERSION_MINOR * 100 + CFA_VERSION_PATCH)
        failed++, fprintf(stderr, "version number %d\n", cfa_version_number());
    int checks = 9;
#ifdef CFA_TEST_PROJECT_VERSION /* the build's project(VERSION), from core.cmake */
    checks++;
    if (strcmp(cfa_version(), CFA_TEST_PROJECT_VERSION) != 0)
        failed++, fprintf(stderr, "version %s, project %s\n", cfa_version(), CFA_TEST_PROJECT_VERSION);
#endif
    printf("%d passed, %d failed\n", checks - failed, failed);
    return failed != 0;
}
