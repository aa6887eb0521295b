/* in_memory */
