"""The app each `--workers N` process loads (hypercorn imports `ferrite.edge.worker:app`).

The parent passes the config file's path in FERRITE_CONFIG (empty: the embedded default,
resolved in the same working directory) and the [edge] table with the command line's
overrides in FERRITE_EDGE.
"""

import logging
import os

from ferrite.core.config import load_config
from ferrite.edge.app import create_app
from ferrite.edge.server import CONFIG_ENV, DEBUG_ENV, EDGE_ENV
from ferrite.edge.settings import EdgeTable

if os.environ.get(DEBUG_ENV):
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("ferrite").setLevel(logging.DEBUG)

config = load_config(os.environ.get(CONFIG_ENV) or None)
if os.environ.get(EDGE_ENV):
    config = config.with_table("edge", EdgeTable.model_validate_json(os.environ[EDGE_ENV]))
app = create_app(config)
