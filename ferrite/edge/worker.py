"""The app each `--workers N` process loads (hypercorn imports `ferrite.edge.worker:app`).

The parent passes the config file's path in FERRITE_CONFIG; empty means the embedded
default, resolved against the same working directory as the parent's.
"""

import os

from ferrite.core.config import load_config
from ferrite.edge.app import create_app
from ferrite.edge.server import CONFIG_ENV

app = create_app(load_config(os.environ.get(CONFIG_ENV) or None))
