"""``python -m examples.flask_app``: the Flask version, on Werkzeug's threaded server.

For production, run ``create_app`` under a WSGI server such as gunicorn.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from werkzeug.serving import WSGIRequestHandler

from examples.app_config import load_config
from examples.flask_app.app import create_app
from tokensmith.verify import Verifier

#: What the log shows for a request line that could not be parsed: it is never logged.
UNPARSED = "(unparsed request line)"


class QueryFreeRequestHandler(WSGIRequestHandler):
    """Werkzeug's request log with the path only, never a query string or a raw request
    line: a client may put its token in the query (the app refuses it), and no token may
    reach a log. Logging never raises, so a malformed request still gets its answer."""

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        try:
            urlsplit(self.path)
        except ValueError:
            # Werkzeug's make_environ would raise on it ("GET http://[::1/ ..."): the
            # client would get no answer and the log a traceback.
            self.send_error(HTTPStatus.BAD_REQUEST, "Bad request target")
            return False
        return True

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        # ``path`` is only set once the request line parsed (getattr: Werkzeug's
        # __getattr__ raises AttributeError for it before that).
        target = getattr(self, "path", None)
        if isinstance(target, str):
            line = f"{self.command} {_path_only(target)} {self.request_version}"
        else:
            line = UNPARSED
        line = line.translate(self._control_char_table)
        self.log("info", '"%s" %s %s', line, getattr(code, "value", code), size)

    def log_error(self, format: str, *args: Any) -> None:
        # The standard library's messages quote the raw request line ("Bad request syntax
        # ('GET /me?access_token=...')"), so only status codes, their standard phrases and
        # exception types are logged.
        if format == "code %d, message %s" and len(args) == 2 and isinstance(args[0], int):
            args = (args[0], _phrase(args[0]))
        else:
            args = tuple(_loggable(arg) for arg in args)
        self.log("error", format, *args)


def _path_only(target: str) -> str:
    try:
        return urlsplit(target).path or "/"
    except ValueError:  # a malformed authority ("//[::1/"): nothing of it is logged
        return "-"


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "-"


def _loggable(value: object) -> object:
    if isinstance(value, int):
        return value
    if isinstance(value, BaseException):
        return type(value).__name__
    return "-"


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
