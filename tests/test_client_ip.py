"""Client address: forwarding headers are believed only from trusted proxies."""

from __future__ import annotations

import pytest

from ferrite.plugins.client_ip import ClientIp, Settings, forwarded_for, parse_ip

PROXIES = ["10.0.0.0/8", "2001:db8:ffff::/48"]


def resolve(peer, headers=None, trusted=PROXIES, names=None):
    settings = Settings(trusted_proxies=trusted, **({"headers": names} if names else {}))
    return ClientIp(settings).ferrite_client_ip(peer=peer, headers=headers or {})


def test_direct_peer_is_the_client():
    assert resolve("203.0.113.7") == "203.0.113.7"


def test_spoofed_headers_from_untrusted_peer_are_ignored():
    headers = {"x-forwarded-for": "1.1.1.1", "forwarded": "for=1.1.1.1",
               "x-real-ip": "1.1.1.1", "cf-connecting-ip": "1.1.1.1"}
    assert resolve("203.0.113.7", headers) == "203.0.113.7"


def test_no_trusted_proxies_means_headers_never_count():
    assert resolve("10.0.0.1", {"x-forwarded-for": "1.1.1.1"}, trusted=[]) == "10.0.0.1"


def test_x_forwarded_for_rightmost_untrusted_hop():
    # The client put a fake address first; the trusted proxy appended the real one.
    headers = {"x-forwarded-for": "6.6.6.6, 198.51.100.20, 10.0.0.5"}
    assert resolve("10.0.0.1", headers) == "198.51.100.20"


def test_x_forwarded_for_all_trusted_takes_leftmost():
    assert resolve("10.0.0.1", {"x-forwarded-for": "10.1.1.1, 10.2.2.2"}) == "10.1.1.1"


def test_garbage_in_the_chain_falls_back_to_the_peer():
    assert resolve("10.0.0.1", {"x-forwarded-for": "1.2.3.4, not-an-ip"}) == "10.0.0.1"


def test_forwarded_rfc7239_with_ipv6_and_ports():
    headers = {"forwarded": 'for=192.0.2.60;proto=http;by=203.0.113.43, '
                            'for="[2001:db8:cafe::17]:4711"'}
    assert resolve("10.9.9.9", headers, names=["forwarded"]) == "2001:db8:cafe::17"


def test_forwarded_parser():
    assert forwarded_for('For="[::1]:80";proto=https, for=1.2.3.4') == ['"[::1]:80"', "1.2.3.4"]


def test_x_real_ip_and_cf_connecting_ip_when_configured():
    assert resolve("10.0.0.1", {"x-real-ip": "198.51.100.3"}) == "198.51.100.3"
    headers = {"cf-connecting-ip": "198.51.100.4", "x-forwarded-for": "6.6.6.6"}
    assert resolve("10.0.0.1", headers, names=["cf-connecting-ip"]) == "198.51.100.4"
    # Not configured: cf-connecting-ip is not read at all.
    assert resolve("10.0.0.1", {"cf-connecting-ip": "198.51.100.4"}) == "10.0.0.1"


def test_ipv6_peer_inside_trusted_ipv6_range():
    headers = {"x-forwarded-for": "2001:db8:1::9"}
    assert resolve("2001:db8:ffff::1", headers) == "2001:db8:1::9"


@pytest.mark.parametrize(("text", "expected"), [
    ("203.0.113.7", "203.0.113.7"),
    ("203.0.113.7:5555", "203.0.113.7"),
    ("[2001:db8::1]:443", "2001:db8::1"),
    ("::ffff:203.0.113.7", "203.0.113.7"),
    ("fe80::1%eth0", "fe80::1"),
    ('"198.51.100.1"', "198.51.100.1"),
    ("unknown", None),
    ("_hidden", None),
    ("", None),
])
def test_parse_ip(text, expected):
    ip = parse_ip(text)
    assert (str(ip) if ip else None) == expected


def test_unparseable_peer_gives_no_address():
    assert resolve("<local>") is None
