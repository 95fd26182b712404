"""The embed snippet the banner and the root page show: the script, and the pixel for
visitors without JavaScript."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape


def snippet_lines(base: str, sites: Sequence[str]) -> list[str]:
    """With one configured site, name it; otherwise let the script and the pixel take the
    page's own host (what they do by default), rather than show a made-up example.com."""
    site = sites[0] if len(sites) == 1 else None
    data_site = f' data-site="{escape(site)}"' if site else ""
    query = f"?d={escape(site)}" if site else ""
    return [f'<script defer src="{escape(base)}/script.js"{data_site}></script>',
            f'<noscript><img src="{escape(base)}/p.gif{query}" alt="" width="1" height="1" '
            f'referrerpolicy="no-referrer-when-downgrade"></noscript>']
