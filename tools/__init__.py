"""Developer tools run by the Makefile (stdlib only)."""
