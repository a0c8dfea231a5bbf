"""zmq-raft client, subscriber and operator tools (``zmqraft.client``)."""
