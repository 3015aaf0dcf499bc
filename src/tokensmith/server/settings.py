"""Loading the server's settings: environment over TOML file over defaults, refused at start
when unknown, malformed, unsafe or inconsistent.

    settings = load_settings(os.environ, config_path)   # in the CLI, once
    app = create_app(settings)                           # passed down from there

The caller hands the environment in as a mapping; nothing in the server reads
``os.environ``. Every problem is collected and raised as one ``SettingsError``
naming each setting by its environment variable (and by its key in the TOML
file when it came from there). A secret's value never appears in a message, a
repr or a JSON dump: secrets are ``SecretStr``, the model hides inputs in its
errors, and the ``ValidationError`` is not chained to the ``SettingsError``.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tokensmith.errors import TokensmithError

from .settings_checks import Duration, Problem, format_duration, parse_duration
from .settings_model import ENV_PREFIX, Settings, env_name

__all__ = [
    "CONFIG_ENV_VAR",
    "ENV_PREFIX",
    "Duration",
    "Problem",
    "Settings",
    "SettingsError",
    "env_name",
    "format_duration",
    "load_settings",
    "parse_duration",
]

#: Names the TOML file when the caller passes no path (the CLI's ``--config`` wins).
CONFIG_ENV_VAR = "TOKENSMITH_CONFIG"


class SettingsError(TokensmithError):
    """The configuration was refused; ``problems`` lists each bad setting and why."""

    code = "invalid_settings"
    description = "The configuration is invalid."

    def __init__(self, problems: list[Problem], origins: Mapping[str, str] | None = None) -> None:
        self.problems = tuple(problems)
        self.settings = tuple(dict.fromkeys(n for p in problems for n in _env_names(p.names)))
        lines = [_render(p, origins or {}) for p in problems]
        count = f"{len(lines)} problem" + ("s" if len(lines) != 1 else "")
        super().__init__(f"invalid configuration ({count}):\n" + "\n".join(lines))


def load_settings(environ: Mapping[str, str], toml_path: Path | None = None) -> Settings:
    """Build the settings from ``environ`` over the TOML file over the defaults.

    ``toml_path`` defaults to ``environ["TOKENSMITH_CONFIG"]`` when that is set.
    Raises ``SettingsError`` listing every unknown, malformed, unsafe or
    inconsistent setting at once.
    """
    by_env = {env_name(field): field for field in Settings.model_fields}
    # A setting is recognised by either of its names, so TOKENSMITH_DATA_DIR suggests
    # TOKENSMITH_DATA and a TOML key "data" suggests data_dir.
    env_hints = {env.removeprefix(ENV_PREFIX): env for env in by_env}
    env_hints |= {field.upper(): env for env, field in by_env.items()}
    toml_hints = {env.removeprefix(ENV_PREFIX).lower(): field for env, field in by_env.items()}
    toml_hints |= {field: field for field in Settings.model_fields}
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}

    if toml_path is None and environ.get(CONFIG_ENV_VAR):
        toml_path = Path(environ[CONFIG_ENV_VAR])
    if toml_path is not None:
        for key, value in _read_toml(toml_path).items():
            if key in Settings.model_fields:
                values[key] = value
                origins[key] = f"{key} in {toml_path}"
            else:
                hint = _did_you_mean(key, toml_hints)
                problems.append(Problem((key,), f"unknown setting in {toml_path}{hint}"))

    for name, value in environ.items():
        if not name.upper().startswith(ENV_PREFIX) or name == CONFIG_ENV_VAR:
            continue
        field = by_env.get(name)
        if field is None:
            hint = _did_you_mean(name.upper().removeprefix(ENV_PREFIX), env_hints)
            problems.append(Problem((name,), f"unknown setting in the environment{hint}"))
        else:
            values[field] = value
            origins.pop(field, None)  # the environment wins over the file

    settings: Settings | None = None
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        problems.extend(_problems_from(exc))
    # Raised outside the except block so the ValidationError (which holds the raw
    # inputs, secrets included) is not kept as __context__ of the error.
    if problems or settings is None:
        raise SettingsError(problems, origins)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        problem = Problem((), f"cannot read the config file {path}: {exc.strerror or exc}")
    except tomllib.TOMLDecodeError as exc:
        # tomllib's messages give a line and column, not the text of the file.
        problem = Problem((), f"the config file {path} is not valid TOML: {exc}")
    raise SettingsError([problem])


def _problems_from(exc: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors(include_input=False, include_url=False):
        if error["type"] == "settings_conflict":
            problems.extend(error.get("ctx", {})["problems"])
            continue
        loc = error["loc"]
        message = error["msg"].removeprefix("Value error, ")
        if len(loc) > 1:
            message = f"item {int(loc[1]) + 1}: {message}" if isinstance(loc[1], int) else message
        problems.append(Problem((str(loc[0]),) if loc else (), message))
    return problems


def _env_names(names: tuple[str, ...]) -> list[str]:
    return [env_name(n) if n in Settings.model_fields else n for n in names]


def _render(problem: Problem, origins: Mapping[str, str]) -> str:
    if not problem.names:
        return f"  {problem.message}"
    labels = []
    for name, label in zip(problem.names, _env_names(problem.names), strict=True):
        # A value from the TOML file is named there too, so the operator knows which
        # of the two places to fix.
        origin = origins.get(name)
        labels.append(f"{label} ({origin})" if origin else label)
    return f"  {', '.join(labels)}: {problem.message}"


def _did_you_mean(name: str, candidates: Mapping[str, str]) -> str:
    # Compared without the shared prefix, which would make every name look close.
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.7)
    return f" (did you mean {candidates[close[0]]}?)" if close else ""
