/* lib/proc.c - being written */
