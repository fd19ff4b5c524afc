/* lib/loop.c - being written */
