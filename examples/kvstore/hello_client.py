"""The client in ten lines: write to a cluster, then read its log back."""

from __future__ import annotations

from zmqraft.client import Client, Entry


# --8<-- [start:hello]
def hello(urls: list[str], secret: str = "") -> list[bytes]:
    with Client(urls, secret=secret, rpc_timeout=10) as client:  # any peers: it finds the leader
        index = client.request_update(b"hello, raft")  # committed and applied at `index`
        info = client.request_log_info()  # the leader's commit index, term, ...
        print(f"committed at {index}; leader {info.leader_id}, term {info.term}")
        return [item.data for item in client.request_entries(prev_index=0) if isinstance(item, Entry)]


# --8<-- [end:hello]
