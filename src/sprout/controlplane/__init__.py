"""The control plane: the daemon, its reconcile loop, the router process it keeps alive, log ingestion."""
