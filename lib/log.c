/* lib/log.c - being written */
