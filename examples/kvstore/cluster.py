"""A three-peer kvstore cluster on this machine, as a zmq-raft config file (a ``.py`` config
may hold Python objects, such as the state machine factory)::

    zmq-raft -c examples/kvstore/cluster.py 1 &
    zmq-raft -c examples/kvstore/cluster.py 2 &
    zmq-raft -c examples/kvstore/cluster.py 3 &
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for `import kvstore`

from kvstore import KVStateMachine

# --8<-- [start:config]
config = {
    "raft": {
        "peers": [
            {"id": "1", "url": "tcp://127.0.0.1:8047"},
            {"id": "2", "url": "tcp://127.0.0.1:8147"},
            {"id": "3", "url": "tcp://127.0.0.1:8247"},
        ],
        # ./kvdata/1, ./kvdata/2, ./kvdata/3; each peer installs the snapshots that
        # zr-log-compact writes to <its data>/compact/snap.new
        "data": {"path": "kvdata", "appendIdToPath": True, "compact": {"watch": True}},
        "factory": {"state": KVStateMachine},  # called with the peer's options
    }
}
# --8<-- [end:config]
