"""The kubernetes provider: the same manifest as Kubernetes objects (two Deployments, Services, HPA, ...).

Kept free of imports: `podspec` and `hpapatch` run inside the cluster's pods with `python -m`, and
importing this package must not pull in the renderer or the kubernetes client.
"""
