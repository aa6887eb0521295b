/* in_cpu */
