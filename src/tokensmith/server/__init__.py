"""The token server: settings, services (the logic, no HTTP types) and thin ASGI routes.

Settings are built once at the edge (the ``tokensmith`` command, or a test) with
``tokensmith.server.settings.load_settings(os.environ, path)`` and passed down,
as in ``create_app(settings)``. Nothing in this package reads the environment
on its own, and there is no module-level settings object.
"""
