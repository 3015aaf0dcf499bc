"""The ``tokensmith`` command line: one module per command group."""
