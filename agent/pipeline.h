/* agent/pipeline.h */
