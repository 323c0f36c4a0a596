"""The worker node: what runs on one EKS node besides the VPC CNI (container restarts, and in time the
sandbox, kubelet, container runtime, logs and ssh)."""
