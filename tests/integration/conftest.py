"""Fixtures of the integration tests (the harness itself is ``raft_harness``).

Every test under ``tests/`` (integration, faults) that makes clusters runs once per server
runtime (``runtime``: asyncio and gevent); other users of ``cluster_factory`` (the client
tests) get asyncio peers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from raft_harness import Cluster

RUNTIMES = ("asyncio", "gevent")


TESTS = Path(__file__).resolve().parents[1]  # the repository's tests/


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cluster_factory" in metafunc.fixturenames and TESTS in Path(str(metafunc.definition.path)).parents:
        metafunc.parametrize("runtime", RUNTIMES)


@pytest.fixture
def runtime() -> str:
    """The server runtime of the peers (the integration tests run with each)."""
    return "asyncio"


@pytest.fixture
def cluster_factory(
    tmp_path: Path, request: pytest.FixtureRequest, runtime: str
) -> Iterator[Callable[..., Cluster]]:
    """``make(ids=["1", "2", "3"], spare=[...], runtime=..., **raft_options) -> Cluster``;
    every peer process is killed at the end (their logs are printed if the test failed)."""
    made: list[Cluster] = []

    def make(ids: list[str] | None = None, **options: Any) -> Cluster:
        root = tmp_path / f"cluster{len(made)}"
        root.mkdir()
        options.setdefault("runtime", runtime)
        cluster = Cluster(root, ids or ["1", "2", "3"], **options)
        made.append(cluster)
        return cluster

    yield make
    failed = getattr(request.node, "rep_call", None)
    for cluster in made:
        if failed is not None and failed.failed:
            print(cluster.dump())
        cluster.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
