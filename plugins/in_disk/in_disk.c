/* in_disk */
