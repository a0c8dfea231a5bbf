"""Cluster configurations: peers, joint (old, new) configurations and majorities.

CONTRACT (the codec helper implements the bodies; the Raft node relies on these names):

    Peer = tuple[str, str]                      # (peer_id, url)

    class ConfigError(ValueError):              # carries the original's error class name
        name: str                               # "TypeError" | "Error" | "AssertionError"
        message: str

    @dataclass(frozen=True, slots=True)
    class ClusterConfig:
        old: tuple[Peer, ...]
        new: tuple[Peer, ...] | None = None     # not None and non-empty => joint

        is_joint -> bool (property)
        ids -> frozenset[str]                   # union of old and new ids
        urls -> dict[str, str]                  # id -> url over the union
        peers_union() -> tuple[Peer, ...]       # old first, then new-only peers (RequestConfig)
        is_member(peer_id) -> bool
        others(self_id) -> tuple[Peer, ...]     # union minus self
        has_majority(ids: Iterable[str]) -> bool   # majority of old AND (if joint) of new
        quorum_index(match: Mapping[str, int]) -> int   # highest index stored on a majority
                                                # of old (and new): members missing from
                                                # `match` count as 0
        to_json() -> list | dict                # [[id,url],...] or {"old": [...], "new": [...]}
        from_json(value) -> ClusterConfig (classmethod; accepts floats? no: strings only;
                                                raises ConfigError on bad shape)
        from_entry_data(data: bytes) -> ClusterConfig (classmethod; msgpack of to_json())
        to_entry_data() -> bytes                # msgpack, original dialect, key order old,new
        join(requested: Any) -> ClusterConfig   # validate a ConfigUpdate's peer list against
                                                # self (final config) and return the joint
                                                # {old: self.old, new: parsed}; raises
                                                # ConfigError with the spec's names/messages
                                                # (protocol.md §9.4)
        final() -> ClusterConfig                # ClusterConfig(old=self.new) of a joint config

    parse_peers(value: Any) -> tuple[Peer, ...]  # [id,url] pairs, "url" strings, {id,url} maps;
                                                # URL rules of protocol.md §5
    majority(n: int) -> int                     # n // 2 + 1
"""
