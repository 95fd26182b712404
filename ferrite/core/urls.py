"""URL and site-name helpers shared by the edge, the importer and the plugins.

A site is a host name, lower case, without a trailing dot or a leading "www." (Plausible's
rule): example.com and www.example.com are one site. Everything here takes text written by
strangers and never raises.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def site_name(host: str) -> str:
    """The site a host name belongs to: lower case, no trailing dot, no leading "www."."""
    return host.strip().lower().rstrip(".").removeprefix("www.")


def url_host(url: str) -> str:
    """The host of a URL without a trailing dot, or "" when there is none."""
    try:
        return (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return ""


def without_query(url: str) -> str:
    """scheme://host/path of a URL, or "" when it is not one."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}{parts.path}" if parts.hostname else ""
    except ValueError:
        return ""


def url_path(url: str) -> str:
    """The path, and the fragment when there is one (the front end keeps it only for
    hash-routed pages); never the query string."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "/"
    return (parts.path or "/") + (f"#{parts.fragment}" if parts.fragment else "")
