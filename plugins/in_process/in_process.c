/* in_process */
