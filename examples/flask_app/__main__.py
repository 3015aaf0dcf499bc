"""``python -m examples.flask_app``: the Flask version, on Werkzeug's threaded server.

For production, run ``create_app`` under a WSGI server such as gunicorn.
"""

from __future__ import annotations

from examples.app_config import load_config
from examples.flask_app.app import create_app
from tokensmith.verify import Verifier


def main() -> None:
    config = load_config()
    with Verifier(config.verifier) as verifier:
        create_app(verifier).run(host=config.host, port=config.port, threaded=True)


if __name__ == "__main__":
    main()
