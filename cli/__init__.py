"""The `chatrelay` command line: `chatrelay dev` runs the whole service locally."""
