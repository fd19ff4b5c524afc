/* lib/config.c - being written */
