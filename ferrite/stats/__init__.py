"""The read side: one query model, one engine, answered by the storage plugins.

`model` validates a query (Plausible's Stats API v2 shape), `periods` turns its date range
into UTC instants in the site's time zone, `engine` asks the storage plugin that implements
`ferrite_stats_store` for additive measures and derives every metric from them. The HTTP
API (in the edge), `ferrite stats` and the dashboard are faces of the same engine.
"""
