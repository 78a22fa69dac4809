"""Providers: the places instances run (local processes, AWS, Kubernetes) behind one interface."""
