/* agent/scheduler.h */
