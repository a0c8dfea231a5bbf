"""zmqraft.core: the sans-IO heart of zmq-raft.

Everything that decides lives here: the wire codecs (:mod:`zmqraft.core.protocol`),
cluster configurations (:mod:`zmqraft.core.cluster`), the Raft node
(:mod:`zmqraft.core.raft`), the peer endpoint the runtimes drive
(:mod:`zmqraft.core.server`), the on-disk formats (:mod:`zmqraft.core.storage`) and a
deterministic cluster simulator (:mod:`zmqraft.core.simulation`).  Nothing in here opens a
socket, starts a thread, sleeps or reads a clock; only ``zmqraft.core.storage.files`` touches
the file system.
"""
