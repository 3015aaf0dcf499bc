"""The application server of the guide's architecture, on FastAPI (see README.md)."""
