/* lib/metrics.c - being written */
