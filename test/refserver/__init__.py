"""Reference FastAPI server for ds-supervisor instances (see test/README.md)."""
