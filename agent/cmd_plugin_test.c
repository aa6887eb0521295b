/* agent/cmd_plugin_test.c */
