"""The environment's on/off switches (``zmqraft.core.switches``)."""

from __future__ import annotations

import pytest
from zmqraft.core.switches import switched_off


@pytest.mark.parametrize("value", ["0", "no", "off", "false", "OFF", " False ", "No"])
def test_these_values_turn_a_switch_off(value: str) -> None:
    assert switched_off({"ZMQRAFT_X": value}, "ZMQRAFT_X")


@pytest.mark.parametrize(
    "env", [{}, {"ZMQRAFT_X": ""}, {"ZMQRAFT_X": "1"}, {"ZMQRAFT_X": "yes"}, {"OTHER": "0"}]
)
def test_anything_else_leaves_it_on(env: dict[str, str]) -> None:
    assert not switched_off(env, "ZMQRAFT_X")
