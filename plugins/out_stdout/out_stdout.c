/* out_stdout */
