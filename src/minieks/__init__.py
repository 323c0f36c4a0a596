"""minieks: EKS pod networking (the AWS VPC CNI) on one Linux machine.

The lab runs nodes and pods in network namespaces against an emulated EC2; the planner runs the
same ipamd logic in virtual time.
"""

__version__ = "0.1.0"
