/* agent/cmd_check.c */
