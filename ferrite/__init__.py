"""Ferrite: self-hosted, cookie-free web analytics event processing.

Plugin authors need only what is exported here: `hookimpl`, the `Hit` and `Event`
records, and `ferrite.testing` for their tests.
"""

from ferrite.core.config import Config, Table, load_config
from ferrite.core.delivery import FatalSinkError, RetryableSinkError
from ferrite.core.errors import ConfigError, FerriteError, PluginError, SinkError
from ferrite.core.event import Agent, Event, Hit
from ferrite.core.hookspecs import hookimpl
from ferrite.core.pipeline import Pipeline
from ferrite.core.sites import Sites, sites_of
from ferrite.dashboard import settings as _dashboard_settings  # noqa: F401  registers [dashboard]
from ferrite.edge import settings as _edge_settings  # noqa: F401  registers [edge]
from ferrite.ingest import settings as _ingest_settings  # noqa: F401  registers [ingest]
from ferrite.stats import settings as _stats_settings  # noqa: F401  registers [stats]

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "Config",
    "ConfigError",
    "Event",
    "FatalSinkError",
    "FerriteError",
    "Hit",
    "Pipeline",
    "PluginError",
    "RetryableSinkError",
    "SinkError",
    "Sites",
    "Table",
    "hookimpl",
    "load_config",
    "sites_of",
]
