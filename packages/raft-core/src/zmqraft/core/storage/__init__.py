"""Durable state: the interfaces the core reads through, and their implementations.

``base`` defines what the Raft core needs from storage; ``memory`` implements it in memory for
tests and the simulator; ``files`` (the only module of ``zmqraft.core`` that does I/O)
implements it with the original's byte-compatible files.
"""
