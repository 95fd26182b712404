"""The visitor's address: the socket peer, or forwarding headers set by a trusted proxy.

Forwarding headers are only believed when the peer is one of `trusted_proxies`; otherwise
any client could claim any address (hypercorn's proxy_fix guide explains the attack).
Through a chain of proxies the client is the rightmost hop that is not itself trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

from pydantic import Field, IPvAnyNetwork

from ferrite.core.config import Config, Table
from ferrite.core.hookspecs import hookimpl

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
HeaderName = Literal["x-forwarded-for", "forwarded", "x-real-ip", "cf-connecting-ip"]


class Settings(Table):
    trusted_proxies: list[IPvAnyNetwork] | None = Field(
        None,
        description="CIDR ranges of the proxies in front of Ferrite; default: [edge] "
        "trusted_proxies; empty trusts none.",
    )
    headers: list[HeaderName] = Field(
        default_factory=lambda: ["x-forwarded-for", "forwarded", "x-real-ip"],
        description="Forwarding headers to read, in order, when the peer is trusted.",
    )


@lru_cache(maxsize=65_536)  # visitors repeat; ipaddress parsing is the costly part
def parse_ip(text: str) -> IPAddress | None:
    """An address from a header or peer value: strips brackets, ports, quotes and zone ids,
    and unwraps IPv4-mapped IPv6 so one visitor has one form."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    text = text.partition("%")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def forwarded_for(value: str) -> list[str]:
    """The `for=` values of an RFC 7239 Forwarded header, nearest hop last."""
    hops = []
    for element in value.split(","):
        for pair in element.split(";"):
            key, _, val = pair.strip().partition("=")
            if key.strip().lower() == "for":
                hops.append(val.strip())
    return hops


class ClientIp:
    def __init__(self, settings: Settings, default_proxies: list[IPvAnyNetwork] = ()) -> None:
        proxies = settings.trusted_proxies
        self.networks = list(default_proxies if proxies is None else proxies)
        self.headers = list(settings.headers)
        self._trusted = lru_cache(maxsize=4096)(self._is_trusted)

    def _is_trusted(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)

    def _rightmost_untrusted(self, hops: list[str]) -> IPAddress | None:
        last: IPAddress | None = None
        for hop in reversed(hops):
            ip = parse_ip(hop)
            if ip is None:
                return None  # garbage in the chain: believe none of it
            if not self._trusted(ip):
                return ip
            last = ip
        return last

    @hookimpl
    def ferrite_client_ip(self, peer: str, headers: Mapping[str, str]) -> str | None:
        peer_ip = parse_ip(peer)
        if peer_ip is None:
            return None
        if not self.networks or not self._trusted(peer_ip):
            return str(peer_ip)
        for name in self.headers:
            value = headers.get(name)
            if not value:
                continue
            if name == "x-forwarded-for":
                found = self._rightmost_untrusted(value.split(","))
            elif name == "forwarded":
                found = self._rightmost_untrusted(forwarded_for(value))
            else:
                found = parse_ip(value)
            if found is not None:
                return str(found)
        return str(peer_ip)


@hookimpl
def ferrite_settings() -> type[Settings]:
    return Settings


@hookimpl
def ferrite_plugin(settings: Settings, config: Config) -> ClientIp:
    return ClientIp(settings, config.edge.trusted_proxies)
