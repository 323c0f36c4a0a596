"""Kernel mode: the VPC, its internet gateway and stand-in internet, and the nodes, as network
namespaces wired the way AWS's fabric and the VPC CNI wire real instances.

Entry point: `minieks.fabric.fabric` (Fabric, cleanup). This package's __init__ stays empty so the
CNI plugin, which imports fabric.netns on every call, does not pay for the rest.
"""
