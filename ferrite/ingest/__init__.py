"""`ferrite ingest`: web-server access logs through the same chain as live hits."""
