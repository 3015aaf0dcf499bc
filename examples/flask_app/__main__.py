"""``python -m examples.flask_app``: the Flask version, on Werkzeug's threaded server.

For production, run ``create_app`` under a WSGI server such as gunicorn.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from werkzeug.serving import WSGIRequestHandler

from examples.app_config import load_config
from examples.flask_app.app import create_app
from tokensmith.verify import Verifier


class QueryFreeRequestHandler(WSGIRequestHandler):
    """Werkzeug's request log, without the query string: a client may put its token
    there (the app refuses it), and no token may reach a log."""

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        path = urlsplit(self.path).path
        line = f"{self.command} {path} {self.request_version}"
        self.log("info", '"%s" %s %s', line, getattr(code, "value", code), size)


def main() -> None:
    config = load_config()
    with Verifier(config.verifier) as verifier:
        create_app(verifier).run(
            host=config.host,
            port=config.port,
            threaded=True,
            request_handler=QueryFreeRequestHandler,
        )


if __name__ == "__main__":
    main()
