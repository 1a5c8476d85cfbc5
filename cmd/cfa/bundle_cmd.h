/* bundle_cmd.h - `cfa bundle export|import` (bundle_cmd.c). */
#ifndef CFA_CLI_BUNDLE_CMD_H
#define CFA_CLI_BUNDLE_CMD_H

/* argv[0] is "export" or "import"; the exit status. */
int cmd_bundle(int argc, char **argv, const char *backbone);

#endif
