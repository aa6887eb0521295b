/* in_uptime */
