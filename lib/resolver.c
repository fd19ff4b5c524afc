/* lib/resolver.c - being written */
