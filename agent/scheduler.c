/* agent/scheduler.c */
