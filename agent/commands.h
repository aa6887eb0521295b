/* commands.h: the subcommands of the pipit CLI. */
#ifndef PIPIT_COMMANDS_H
#define PIPIT_COMMANDS_H

/* Each takes the arguments after the subcommand name (argv[0] is it) and
 * returns the process exit status. */
int cmd_check(int argc, char **argv);
int cmd_plugin_test(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_options(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_deploy(int argc, char **argv);
int cmd_sign_plugin(int argc, char **argv);

#endif
