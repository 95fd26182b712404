"""The dashboard: server-rendered pages over the stats engine, with accounts and shared
links. A room of its own; the edge mounts it on `ferrite serve`'s port."""
