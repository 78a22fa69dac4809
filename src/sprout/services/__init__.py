"""Backing services of an environment: the session store, managed memcached nodes and the database."""
