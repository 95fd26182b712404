"""Event model, hook contract, plugin manager, config and pipeline: no web code here."""
