/* pipit.c: the pipit command line: dispatch to subcommands. */
#include <stdio.h>
#include <string.h>
#include "commands.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    { "check", cmd_check, "validate a configuration file (pipit check -c FILE)" },
    { "plugin-test", cmd_plugin_test,
      "run one plugin alone and print what it emits (pipit plugin-test PLUGIN.so [key=value...])" },
    { "decode", cmd_decode, "print the records of wire batches as JSON lines (pipit decode [FILE...])" },
    { "run", cmd_run, "run a deployment plan on this host (pipit run PLAN.yaml [--var k=v])" },
    { "options", cmd_options, "list every configuration key (pipit options [--markdown])" },
    { "keygen", cmd_keygen, "make a key pair that signs deployment commands (pipit keygen [--out PREFIX])" },
    { "deploy", cmd_deploy,
      "send a signed plan to a fleet in waves and watch it (pipit deploy PLAN.yaml --target SEL ...)" },
    { "sign-plugin", cmd_sign_plugin,
      "sign plugin files for plugins.require_signature (pipit sign-plugin --key KEY PLUGIN.so...)" },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: pipit COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "  %-12s %s\n", "version", "print the version");
    fprintf(f, "\nRun 'pipit COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("pipit %s\n", PACKAGE_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "pipit: unknown command \"%s\"\n\n", cmd);
    usage(stderr);
    return 2;
}
