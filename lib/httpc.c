/* lib/httpc.c - being written */
