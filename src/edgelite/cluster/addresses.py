"""Where a cluster member can be reached: its peer address and its public URLs."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class MemberAddress:
    node_id: str
    peer: str = ""  # host:port of the peer transport
    http_url: str = ""
    admin_url: str = ""
    location: str = ""

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MemberAddress:
        return cls(**{k: str(v) for k, v in data.items()
                      if k in {f.name for f in dataclasses.fields(cls)}})
