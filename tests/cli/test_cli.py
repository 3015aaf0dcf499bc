"""The command line through the real console script, exit codes included."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tokensmith.jose import JWK, JWTPolicy, verify_jwt

SCRIPT = Path(sys.executable).with_name("tokensmith")


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout


@pytest.fixture(scope="module")
def es_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("keys")
    result = run("keygen", "--alg", "ES256", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def sign(key: Path, *args: str) -> str:
    result = run("token", "sign", "--key", str(key), *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_keygen_writes_four_files_with_private_ones_0600(es_keys: Path) -> None:
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in es_keys.iterdir()}
    assert set(modes) == {"private.pem", "public.pem", "private.jwk.json", "public.jwk.json"}
    assert modes["private.pem"] == 0o600
    assert modes["private.jwk.json"] == 0o600
    assert modes["public.pem"] & 0o077 != 0o077  # readable by others is fine for public
    public = json.loads((es_keys / "public.jwk.json").read_text())
    assert "d" not in public
    assert public["alg"] == "ES256"
    private = JWK.from_json((es_keys / "private.jwk.json").read_text())
    assert private.is_private and private.kid == public["kid"]
    assert JWK.from_pem((es_keys / "public.pem").read_bytes()).kid == public["kid"]


def test_keygen_refuses_to_overwrite_without_force(es_keys: Path) -> None:
    before = (es_keys / "private.pem").read_bytes()
    result = run("keygen", "--alg", "ES256", "--out", str(es_keys))
    assert result.returncode == 1
    assert result.stderr.startswith("error: refusing to overwrite") and "--force" in result.stderr
    assert (es_keys / "private.pem").read_bytes() == before
    assert_no_traceback(result)


def test_keygen_force_replaces_and_keeps_mode(tmp_path: Path) -> None:
    assert run("keygen", "--alg", "EdDSA", "--out", str(tmp_path)).returncode == 0
    before = (tmp_path / "private.pem").read_bytes()
    assert run("keygen", "--alg", "EdDSA", "--out", str(tmp_path), "--force").returncode == 0
    assert (tmp_path / "private.pem").read_bytes() != before
    assert stat.S_IMODE((tmp_path / "private.pem").stat().st_mode) == 0o600


def test_keygen_hmac_writes_only_a_secret_jwk(tmp_path: Path) -> None:
    result = run("keygen", "--alg", "HS384", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["secret.jwk.json"]
    assert stat.S_IMODE((tmp_path / "secret.jwk.json").stat().st_mode) == 0o600
    key = JWK.from_json((tmp_path / "secret.jwk.json").read_text())
    assert key.kty == "oct" and key.algorithms == {"HS384"}
    token = sign(tmp_path / "secret.jwk.json", "--alg", "HS384", "--claims", '{"sub":"a"}')
    ok = run("token", "verify", "--key", str(tmp_path / "secret.jwk.json"), "--alg", "HS384", token)
    assert ok.returncode == 0, ok.stderr


def test_sign_then_verify_prints_claims(es_keys: Path) -> None:
    token = sign(
        es_keys / "private.pem",
        "--alg",
        "ES256",
        "--typ",
        "at+jwt",
        "--exp-in",
        "2m",
        "--claims",
        '{"sub":"john","iss":"https://auth.test","aud":"api","roles":["EDITOR"]}',
    )
    result = run(
        "token",
        "verify",
        "--key",
        str(es_keys / "public.jwk.json"),
        "--alg",
        "ES256,RS256",
        "--iss",
        "https://auth.test",
        "--aud",
        "api",
        "--typ",
        "at+jwt",
        "--require",
        "sub,roles",
        token,
    )
    assert result.returncode == 0, result.stderr
    claims = json.loads(result.stdout)
    assert claims["sub"] == "john" and claims["roles"] == ["EDITOR"]
    assert claims["exp"] - claims["iat"] == 120
    # The same token verifies in-process with the PEM public key.
    key = JWK.from_pem((es_keys / "public.pem").read_bytes())
    assert verify_jwt(token, key, JWTPolicy(algorithms=["ES256"], audience="api"))["sub"] == "john"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--iss", "https://other.test"], "invalid_claim"),
        (["--aud", "other"], "invalid_claim"),
        (["--typ", "at+jwt"], "invalid_type"),
        (["--require", "email"], "missing_claim"),
        (["--now", "4102444800"], "expired_token"),
    ],
)
def test_verify_failures_exit_1_with_code_on_stderr(
    es_keys: Path, args: list[str], code: str
) -> None:
    token = sign(
        es_keys / "private.pem",
        "--alg",
        "ES256",
        "--claims",
        '{"iss":"https://a.test","aud":"api"}',
    )
    base = ["token", "verify", "--key", str(es_keys / "public.pem"), "--alg", "ES256"]
    if "--aud" not in args:
        base += ["--aud", "api"]
    result = run(*base, *args, token)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {code}:")
    assert token not in result.stderr
    assert_no_traceback(result)


def test_verify_tampered_token_exits_1(es_keys: Path) -> None:
    token = sign(es_keys / "private.pem", "--alg", "ES256", "--claims", '{"role":"EDITOR"}')
    header, _, signature = token.split(".")
    other = sign(es_keys / "private.pem", "--alg", "ES256", "--claims", '{"role":"ADMIN"}')
    forged = f"{header}.{other.split('.')[1]}.{signature}"
    result = run("token", "verify", "--key", str(es_keys / "public.pem"), "--alg", "ES256", forged)
    assert result.returncode == 1
    assert result.stderr.startswith("error: bad_signature:")


def test_verify_now_evaluates_old_tokens(es_keys: Path) -> None:
    token = sign(es_keys / "private.pem", "--alg", "ES256", "--claims", '{"exp": 1000000000}')
    key = str(es_keys / "public.pem")
    expired = run("token", "verify", "--key", key, "--alg", "ES256", token)
    assert expired.returncode == 1 and "expired_token" in expired.stderr
    # With --now inside [iat, exp) the same kind of old token verifies.
    token = sign(
        es_keys / "private.pem",
        "--alg",
        "ES256",
        "--claims",
        '{"exp": 1000000000, "iat": 999999000}',
    )
    then = run("token", "verify", "--key", key, "--alg", "ES256", "--now", "999999500", token)
    assert then.returncode == 0, then.stderr
    assert json.loads(then.stdout)["exp"] == 1000000000


def test_verify_reads_token_from_file_and_stdin(es_keys: Path, tmp_path: Path) -> None:
    token = sign(es_keys / "private.pem", "--alg", "ES256", "--claims", '{"sub":"x"}')
    path = tmp_path / "token.txt"
    path.write_text(token + "\n")
    key = str(es_keys / "public.pem")
    from_file = run("token", "verify", "--key", key, "--alg", "ES256", "--token-file", str(path))
    assert from_file.returncode == 0, from_file.stderr
    from_stdin = run("token", "verify", "--key", key, "--alg", "ES256", "-", stdin=token)
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert json.loads(from_file.stdout) == json.loads(from_stdin.stdout)


def test_verify_with_a_jwk_set_file(es_keys: Path, tmp_path: Path) -> None:
    other = JWK.generate("ES256")
    public = json.loads((es_keys / "public.jwk.json").read_text())
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [other.to_dict(), public]}))
    token = sign(es_keys / "private.jwk.json", "--alg", "ES256", "--claims", '{"sub":"x"}')
    result = run("token", "verify", "--key", str(jwks), "--alg", "ES256", token)
    assert result.returncode == 0, result.stderr
    unknown = sign(es_keys / "private.pem", "--alg", "ES256", "--kid", "nope", "--claims", "{}")
    result = run("token", "verify", "--key", str(jwks), "--alg", "ES256", unknown)
    assert result.returncode == 1 and result.stderr.startswith("error: key_not_found:")


def test_large_token_through_file(es_keys: Path, tmp_path: Path) -> None:
    big = json.dumps({"blob": "x" * 20000})
    token = sign(es_keys / "private.pem", "--alg", "ES256", "--claims", big)
    path = tmp_path / "big.txt"
    path.write_text(token)
    result = run(
        "token",
        "verify",
        "--key",
        str(es_keys / "public.pem"),
        "--alg",
        "ES256",
        "--token-file",
        str(path),
    )
    # Over the default 8 KiB maximum: refused before any decoding.
    assert result.returncode == 1
    assert result.stderr.startswith("error: token_too_large:")


def test_decode_marks_output_unverified(es_keys: Path) -> None:
    token = sign(es_keys / "private.pem", "--alg", "ES256", "--claims", '{"sub":"x"}')
    result = run("token", "decode", token[:-4] + "AAAA")  # a broken signature decodes anyway
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert "UNVERIFIED" in document["warning"]
    assert document["header"]["alg"] == "ES256"
    assert document["payload"]["sub"] == "x"


@pytest.mark.parametrize(
    "args",
    [
        ["token", "decode", "not-a-token"],
        ["token", "verify", "--key", "/etc/hostname", "--alg", "ES256", "a.b.c"],
        ["token", "verify", "--key", "MISSING", "--alg", "ES256", "a.b.c"],
        ["token", "verify", "--key", "/etc/hostname", "--alg", "none", "a.b.c"],
        ["token", "sign", "--key", "/etc/hostname", "--alg", "ES256", "--claims", "[1]"],
        ["token", "sign", "--key", "/etc/hostname", "--alg", "ES256", "--exp-in", "soon"],
        ["keygen", "--alg", "none", "--out", "x"],
        ["token", "verify", "--alg", "ES256"],
    ],
)
def test_bad_input_never_prints_a_traceback(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode in (1, 2)
    assert result.stderr.strip()
    assert_no_traceback(result)


def test_sign_refuses_public_key(es_keys: Path) -> None:
    result = run("token", "sign", "--key", str(es_keys / "public.pem"), "--alg", "ES256")
    assert result.returncode == 1
    assert "private key" in result.stderr


def test_demo_runs_and_refuses_forgeries() -> None:
    result = run("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Verified" in out
    for code in ("bad_signature", "algorithm_not_allowed", "malformed_token", "expired_token"):
        assert f"[{code}]" in out


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert "tokensmith" in result.stdout


def test_script_environment_is_clean() -> None:
    # Guard against the tests silently using a system-wide tokensmith.
    assert SCRIPT.exists(), SCRIPT
    assert os.access(SCRIPT, os.X_OK)
