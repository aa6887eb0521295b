/* agent/pipeline.c */
