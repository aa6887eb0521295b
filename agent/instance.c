/* agent/instance.c */
