"""Fixtures of the reliability suite, shared with the opening tests: the in-process
Scene (tests/opening/conftest.py) and real `bidding serve` processes on a fresh database
(tests/opening/test_processes.py)."""

from tests.opening.conftest import live_server, scene  # noqa: F401
from tests.opening.test_processes import cluster, database  # noqa: F401
