"""The same application server on Flask (see ../app_server/README.md)."""
