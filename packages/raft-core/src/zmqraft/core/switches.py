"""On/off switches read from the environment: a ``ZMQRAFT_*`` variable set to 0, no, off or
false (any case, spaces around ignored) turns off a default of the peer commands
(``malloc_tuning``, ``cpu_scheduling``, the asyncio runtime's uvloop)."""

from __future__ import annotations

from collections.abc import Mapping

_OFF = frozenset({"0", "no", "off", "false"})


def switched_off(env: Mapping[str, str], name: str) -> bool:
    """Does ``env`` turn the switch ``name`` off?  Unset or any other value leaves it on."""
    return env.get(name, "").strip().lower() in _OFF


__all__ = ["switched_off"]
