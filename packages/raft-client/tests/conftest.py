"""End-to-end client tests run real peers with the integration harness of the repository
(tests/integration): its ``cluster_factory`` fixture starts ``python -m zmqraft.asyncio``
peers on 127.0.0.1 with ephemeral ports and kills every one of them at the end.

Outside a checkout (no tests/integration), the end-to-end tests are skipped.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
INTEGRATION = REPO / "tests" / "integration"
HAVE_HARNESS = (INTEGRATION / "raft_harness.py").is_file()

if HAVE_HARNESS:
    if str(INTEGRATION) not in sys.path:
        sys.path.insert(0, str(INTEGRATION))
    _spec = importlib.util.spec_from_file_location(
        "zmqraft_integration_conftest", INTEGRATION / "conftest.py"
    )
    assert _spec is not None and _spec.loader is not None
    _integration = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_integration)
    cluster_factory = _integration.cluster_factory
    runtime = _integration.runtime
    pytest_runtest_makereport = _integration.pytest_runtest_makereport
