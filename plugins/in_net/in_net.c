/* in_net */
