"""A stdlib app that reports what its own user can read: a path given in the query, another process's environment."""
