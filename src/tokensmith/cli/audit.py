"""``tokensmith audit``: the security event log, newest first."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import click

from tokensmith.server.services import audit_summary
from tokensmith.server.settings import parse_duration
from tokensmith.store import AuditEntry, Repositories

from ._context import config_option, json_option, load, open_services, run_async
from ._table import echo_json, echo_table, format_time

__all__ = ["audit", "parse_since"]

MAX_LIMIT = 10_000

#: The last second of year 9999, the latest time ``datetime`` (and the ISO form) can name;
#: a larger number would overflow SQLite's INTEGER.
MAX_SINCE = 253_402_300_799

_UNIX_SECONDS = re.compile(r"@[0-9]+")
_BARE_NUMBER = re.compile(r"[0-9]+")


def parse_since(text: str, now: int) -> int:
    """``--since``: a duration back from now (``90s``, ``15m``, ``2h``, ``7d``), an ISO 8601
    time (``2026-11-23T02:00:00Z``; no zone means UTC) or a Unix time (``@1763863200``).

    A number without a unit is refused: ``1795483930`` could be a Unix time or seconds
    back from now, and taken as the one when meant as the other it silently selects
    the wrong events (57 years of them).
    """
    value = text.strip()
    if _BARE_NUMBER.fullmatch(value):
        n = value if len(value) <= 20 else "N"
        raise click.BadParameter(
            f"a number needs a unit: @{n} for a Unix time, {n}s for seconds back from now",
            param_hint="'--since'",
        )
    if _UNIX_SECONDS.fullmatch(value):
        # Checked as text: a thousand digits would be slow to convert, not only too large.
        digits = value[1:].lstrip("0") or "0"
        if len(digits) > len(str(MAX_SINCE)) or int(digits) > MAX_SINCE:
            raise click.BadParameter(
                f"@UNIX_SECONDS must be at most {MAX_SINCE} (9999-12-31T23:59:59Z)",
                param_hint="'--since'",
            )
        return int(digits)
    if value[-1:].lower() in ("s", "m", "h", "d"):
        try:
            return max(0, now - parse_duration(value))
        except ValueError:
            pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            "use a duration (90s, 15m, 2h, 7d), an ISO 8601 time or @UNIX_SECONDS",
            param_hint="'--since'",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0, int(moment.timestamp()))


@click.command()
@click.option(
    "--since",
    default=None,
    help="Only events since: a duration back from now (90s, 15m, 2h, 7d), an ISO 8601 "
    "time or @UNIX_SECONDS. A number without a unit is refused.",
)
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_LIMIT),
    default=100,
    show_default=True,
    help="At most this many events.",
)
@json_option
@config_option
def audit(since: str | None, limit: int, as_json: bool, config_path: Path | None) -> None:
    """Show the audit log of security events, newest first."""
    settings = load(config_path)

    async def go() -> list[AuditEntry]:
        async with open_services(settings) as ctx:
            start = None if since is None else parse_since(since, int(ctx.clock.now()))
            async with ctx.db.read() as session:
                return await Repositories(session).audit.page(limit=limit, since=start)

    entries = run_async(go)
    if as_json:
        echo_json([audit_summary(e) for e in entries])
        return
    rows = [
        (
            format_time(e.at),
            e.event.value,
            e.actor,
            e.subject,
            e.client_address,
            json.dumps(dict(e.detail), sort_keys=True, separators=(",", ":")) if e.detail else None,
        )
        for e in entries
    ]
    headers = ("TIME", "EVENT", "ACTOR", "SUBJECT", "ADDRESS", "DETAIL")
    echo_table(headers, rows, empty="no events")
