/* lib/alog.c - being written */
