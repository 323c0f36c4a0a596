"""The chaos suite's fixtures: clusters with a private state root (tests/cluster/conftest.py's)."""

from tests.cluster.conftest import make_cluster  # noqa: F401  (a fixture, used by name)
