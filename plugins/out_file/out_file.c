/* out_file */
