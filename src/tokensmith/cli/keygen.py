"""``tokensmith keygen``: a new signing key written as PEM and JWK files."""

from __future__ import annotations

from pathlib import Path

import click

from tokensmith.jose import JWK, SUPPORTED_ALGORITHMS

from .keyfiles import write_new_file

__all__ = ["keygen"]


@click.command()
@click.option(
    "--alg",
    required=True,
    type=click.Choice(sorted(SUPPORTED_ALGORITHMS)),
    help="The algorithm the key is for (RS256, ES256, EdDSA, HS256, ...).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write the key files into (created if missing).",
)
@click.option("--kid", default=None, help="Key id (default: the RFC 7638 thumbprint).")
@click.option("--rsa-bits", default=2048, show_default=True, help="RSA modulus size.")
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
def keygen(alg: str, out_dir: Path, kid: str | None, rsa_bits: int, force: bool) -> None:
    """Generate a key for ALG.

    Asymmetric: private.pem (0600), public.pem, private.jwk.json (0600) and
    public.jwk.json. HMAC (HS*): a random secret as secret.jwk.json (0600).
    """
    if rsa_bits not in (2048, 3072, 4096):
        raise click.BadParameter("choose 2048, 3072 or 4096", param_hint="'--rsa-bits'")
    key = JWK.generate(alg, kid=kid, rsa_bits=rsa_bits)
    files: list[tuple[str, bytes, bool]]
    if key.kty == "oct":
        files = [("secret.jwk.json", key.to_json(private=True).encode() + b"\n", True)]
    else:
        files = [
            ("private.pem", key.to_pem(private=True), True),
            ("public.pem", key.to_pem(), False),
            ("private.jwk.json", key.to_json(private=True).encode() + b"\n", True),
            ("public.jwk.json", key.to_json().encode() + b"\n", False),
        ]
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = [name for name, _, _ in files if (out_dir / name).exists()]
    if existing and not force:
        raise FileExistsError(
            f"refusing to overwrite {', '.join(existing)} in {out_dir} (use --force)"
        )
    for name, data, private in files:
        write_new_file(out_dir / name, data, private=private, force=force)
    click.echo(f"{alg} key {key.kid}")
    for name, _, private in files:
        click.echo(f"  {out_dir / name}{'  (private, mode 0600)' if private else ''}")
