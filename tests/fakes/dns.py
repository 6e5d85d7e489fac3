"""A resolver whose answers a test writes down: the n-th lookup of a name gets the n-th answer listed for
it (the last one repeats), so a test can play a DNS server that changes its answer (rebinding)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from shine_mcp.integrations.public_http import IPAddress


class ScriptedDNS:
    def __init__(self, answers: Mapping[str, Sequence[Sequence[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []  # every name asked for, in order

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        seen = self.lookups.count(host)
        self.lookups.append(host)
        script = self.answers.get(host)
        if not script:
            raise OSError(f"{host}: Name or service not known")
        return [ipaddress.ip_address(a) for a in script[min(seen, len(script) - 1)]]


def answering(**names: Sequence[str]) -> ScriptedDNS:
    """Each name always answers the same addresses: `answering(**{"photos.test": ["10.0.0.7"]})`."""
    return ScriptedDNS({name: [addresses] for name, addresses in names.items()})
