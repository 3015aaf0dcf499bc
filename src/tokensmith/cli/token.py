"""``tokensmith token sign|verify|decode``."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from tokensmith.clock import FixedClock
from tokensmith.errors import InvalidKey, TokenTooLarge
from tokensmith.jose import (
    DEFAULT_MAX_TOKEN_BYTES,
    JWK,
    MAX_LEEWAY,
    SUPPORTED_ALGORITHMS,
    JWKSet,
    JWTPolicy,
    decode_unverified,
    encode_jwt,
    verify_jwt,
)
from tokensmith.jose._json import JSONError, loads_object

from .keyfiles import load_key_file, read_at_most

__all__ = ["parse_duration", "token"]

_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Beyond any sensible token lifetime; also keeps exp a small integer.
_MAX_DURATION = 366 * 86400
#: The most read from --token-file or stdin: a token of the core's 8 KiB limit plus room
#: for the whitespace around it (a final newline or CRLF). One byte more is read, so a
#: longer input (a huge file, /dev/zero, a pipe that never ends) is refused, never read whole.
_MAX_TOKEN_INPUT = DEFAULT_MAX_TOKEN_BYTES + 64


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``15m``, ``2h`` or ``1d`` as seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 15m, 2h or 1d")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not 0 < seconds <= _MAX_DURATION:
        raise click.BadParameter("the duration must be between 1 second and 366 days")
    return seconds


def _comma_list(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def _bounded_token(stream: IO[bytes]) -> str:
    """The token in ``stream``, read no further than just past the size limit."""
    data = read_at_most(stream, _MAX_TOKEN_INPUT + 1)
    # Non-ASCII becomes U+FFFD, which the core refuses as malformed_token.
    text = data.decode("ascii", errors="replace").strip()
    if len(data) > _MAX_TOKEN_INPUT or len(text) > DEFAULT_MAX_TOKEN_BYTES:
        raise TokenTooLarge()
    return text


def _read_token(token: str | None, token_file: Path | None) -> str:
    if token is not None and token_file is not None:
        raise click.UsageError("give the token as an argument or with --token-file, not both")
    if token_file is not None:
        with token_file.open("rb") as file:
            return _bounded_token(file)
    if token is None:
        raise click.UsageError("give a TOKEN, --token-file PATH, or - to read standard input")
    if token == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is None:
            raise click.UsageError("standard input is closed: cannot read the token from -")
        return _bounded_token(stdin)
    return token.strip()


def _signing_key(keys: JWK | JWKSet, kid: str | None) -> JWK:
    if isinstance(keys, JWK):
        return keys
    private = [key for key in keys if key.is_private]
    if kid is not None:
        chosen = keys.get(kid)
        if chosen is None or not chosen.is_private:
            raise InvalidKey(f"the key set has no private key with kid {kid!r}")
        return chosen
    if len(private) != 1:
        raise InvalidKey("the key set holds several private keys: choose one with --kid")
    return private[0]


FC = TypeVar("FC", bound=Callable[..., Any])

_token_file_option = click.option(
    "--token-file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the token from a file.",
)


def _key_option(help_text: str) -> Callable[[FC], FC]:
    return click.option(
        "--key",
        "key_file",
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help=help_text,
    )


@click.group()
def token() -> None:
    """Sign, verify and inspect tokens."""


@token.command()
@_key_option("Private PEM, JWK or JWK Set.")
@click.option("--alg", required=True, type=click.Choice(sorted(SUPPORTED_ALGORITHMS)))
@click.option("--kid", default=None, help="kid header (default: the key's kid).")
@click.option("--exp-in", default="15m", show_default=True, help="Lifetime: 90s, 15m, 2h, 1d.")
@click.option("--typ", default="JWT", show_default=True, help="typ header, e.g. at+jwt.")
@click.option("--claims", "claims_json", default="{}", help="Claims as a JSON object.")
def sign(
    key_file: Path, alg: str, kid: str | None, exp_in: str, typ: str, claims_json: str
) -> None:
    """Sign CLAIMS and print the compact token. iat and exp are added unless present."""
    try:
        claims = loads_object(claims_json.encode("utf-8"))
    except JSONError as exc:
        raise click.BadParameter(f"not a JSON object: {exc}", param_hint="'--claims'") from None
    key = _signing_key(load_key_file(key_file, alg=None), kid)
    if not key.is_private:
        raise InvalidKey("signing needs a private key")
    if not key.can_sign(alg):
        raise InvalidKey(f"this key cannot sign {alg}")
    lifetime = None if "exp" in claims else parse_duration(exp_in)
    issued_at = "iat" not in claims
    click.echo(
        encode_jwt(
            claims,
            key,
            alg=alg,
            kid=kid,
            typ=typ or None,
            expires_in=lifetime,
            issued_at=issued_at,
        )
    )


@token.command()
@_key_option("PEM, JWK or JWK Set.")
@click.option("--alg", "algs", required=True, help="Allowed algorithm(s), comma-separated.")
@click.option("--iss", default=None, help="Expected issuer (exact match).")
@click.option("--aud", default=None, help="Expected audience(s), comma-separated.")
@click.option("--typ", default=None, help="Expected typ header, e.g. at+jwt.")
@click.option("--require", default=None, help="Claims that must be present, comma-separated.")
@click.option(
    "--leeway",
    default=0,
    type=click.IntRange(0, MAX_LEEWAY),
    show_default=True,
    help="Clock skew tolerated, in seconds.",
)
@click.option(
    "--now", "now", default=None, type=int, help="Evaluate time claims as of this Unix time."
)
@_token_file_option
@click.argument("token", required=False)
def verify(
    key_file: Path,
    algs: str,
    iss: str | None,
    aud: str | None,
    typ: str | None,
    require: str | None,
    leeway: int,
    now: int | None,
    token_file: Path | None,
    token: str | None,
) -> None:
    """Verify TOKEN (or --token-file, or - for stdin) and print its claims as JSON.

    Exits 0 when the token is valid; otherwise prints the error code and
    message on stderr and exits 1.
    """
    algorithms = _comma_list(algs)
    unknown = [alg for alg in algorithms if alg not in SUPPORTED_ALGORITHMS]
    if not algorithms or unknown:
        raise click.BadParameter(
            f"choose from {', '.join(sorted(SUPPORTED_ALGORITHMS))}", param_hint="'--alg'"
        )
    policy = JWTPolicy(
        algorithms=algorithms,
        issuer=iss,
        audience=_comma_list(aud) or None,
        typ=typ,
        required_claims=_comma_list(require),
        leeway=leeway,
        clock=FixedClock(now) if now is not None else None,
    )
    raw = _read_token(token, token_file)
    keys = load_key_file(key_file)
    claims = verify_jwt(raw, keys, policy)
    click.echo(json.dumps(claims, indent=2, ensure_ascii=False))


@token.command()
@_token_file_option
@click.argument("token", required=False)
def decode(token_file: Path | None, token: str | None) -> None:
    """Print TOKEN's header and payload WITHOUT verifying anything."""
    raw = _read_token(token, token_file)
    unverified = decode_unverified(raw)
    document: dict[str, Any] = {
        "warning": "UNVERIFIED: the signature and claims have NOT been checked",
        "header": unverified.header,
        "payload": unverified.claims,
    }
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))
