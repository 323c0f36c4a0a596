"""`minieks explain pod NAME`: why a pod is not Running, from the Kubernetes API, the node's ipamd
(introspection, metrics, log) and EC2, named as an expert would name it.

facts.py holds the plain data, gather.py collects it from a running cluster, diagnose.py decides
(pure), diagnosis.py renders, command.py is the CLI.
"""

from minieks.explain.diagnose import CAUSE_CODES, diagnose
from minieks.explain.diagnosis import Cause, Diagnosis
from minieks.explain.facts import Ec2Facts, Facts, IpamdFacts, NodeUsage, TypeLimits

__all__ = ["CAUSE_CODES", "Cause", "Diagnosis", "Ec2Facts", "Facts", "IpamdFacts", "NodeUsage", "TypeLimits",
           "diagnose"]
