"""A whole EKS-like cluster: its specification, EKS's naming, and the supervisor that runs it."""
