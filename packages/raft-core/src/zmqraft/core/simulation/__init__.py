"""Deterministic whole-cluster simulation of zmq-raft peers (see ``cluster``)."""

from .checker import Checker, Violation
from .cluster import DigestStateMachine, SimOptions, Simulation

__all__ = ["Checker", "DigestStateMachine", "SimOptions", "Simulation", "Violation"]
