"""The one exception every decoder raises."""

from __future__ import annotations


class ProtocolError(ValueError):
    """Malformed input from the network: names the message, the frame and the reason."""
