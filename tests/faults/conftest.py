"""The fault tests share the integration tests' harness and fixtures (tests/integration):
real peer processes on 127.0.0.1, each test once per server runtime."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
if str(INTEGRATION) not in sys.path:
    sys.path.insert(0, str(INTEGRATION))
_spec = importlib.util.spec_from_file_location("zmqraft_faults_conftest", INTEGRATION / "conftest.py")
assert _spec is not None and _spec.loader is not None
_integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_integration)

cluster_factory = _integration.cluster_factory
runtime = _integration.runtime
pytest_generate_tests = _integration.pytest_generate_tests
pytest_runtest_makereport = _integration.pytest_runtest_makereport
