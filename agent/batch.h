/* agent/batch.h */
