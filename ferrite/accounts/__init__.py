"""Dashboard accounts: users and roles, login sessions, shared links and the setup token.

A room of its own (no web stack): `ferrite users` and the dashboard both build on it, and
storage plugins keep the records through the `ferrite_account_store` hook."""
