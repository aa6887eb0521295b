/* agent/settings.h */
