from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture
def no_sync(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Skip real syncs where a test only checks logic (speed); durability tests do not use it."""
    monkeypatch.setattr(os, "fdatasync", lambda fd: None)
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    yield
