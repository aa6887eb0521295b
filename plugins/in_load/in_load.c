/* in_load */
