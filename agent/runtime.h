/* agent/runtime.h */
