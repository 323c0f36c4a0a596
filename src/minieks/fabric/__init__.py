"""Kernel mode: the VPC, its internet gateway and stand-in internet, and the nodes, as network
namespaces wired the way AWS's fabric and the VPC CNI wire real instances."""
