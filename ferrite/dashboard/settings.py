"""`[dashboard]`: the browser dashboard served by `ferrite serve`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ferrite.core.config import Table, register_table


class DashboardTable(Table):
    """`[dashboard]`: pages, logins and shared links."""

    enabled: bool = Field(True, description="Serve the dashboard; false on collection-only "
                          "nodes.")
    session_hours: float = Field(24 * 14, gt=0, le=24 * 365,
                                 description="A login lasts this long, then asks again.")
    secure_cookies: Literal["auto", "always"] = Field(
        "auto", description="auto: cookies are Secure when the request came over HTTPS, or "
        "through a trusted proxy that says so (X-Forwarded-Proto: https); always: always.")
    setup_link_hours: float = Field(24, gt=0, le=24 * 30,
                                    description="How long the first-run setup link works.")
    login_attempts: int = Field(5, ge=1, le=1000, description="Failed logins per account "
                                "within `login_window_minutes` before it must wait.")
    client_login_attempts: int = Field(20, ge=1, le=10_000,
                                       description="Failed logins per client (any account) "
                                       "within the window before it must wait.")
    login_window_minutes: float = Field(15, gt=0, le=24 * 60)
    realtime_refresh_seconds: float = Field(30, ge=1, le=3600,
                                            description="How often the open site page "
                                            "refreshes its current-visitors count.")
    default_period: Literal["day", "7d", "28d", "30d", "91d", "month", "6mo", "12mo",
                            "year", "all"] = Field(
        "28d", description="The period a site page opens on.")


register_table("dashboard", DashboardTable)
