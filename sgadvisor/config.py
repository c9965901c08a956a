"""The configuration file (``--config FILE``, default ``./sgadvisor.toml`` if present).

Top-level keys are long option names and apply to every command that has that option; ``[recommend]``,
``[check]``, ``[query]`` (any command name) tables override per command; ``[[pin]]`` and ``[[allow]]``
tables carry rule exceptions with a reason and an expiry; ``[[fixed]]`` tables name partner addresses
that do not rotate (their internet rules are pinned /32s). Command-line options win over the file.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sgadvisor.errors import InputError
from sgadvisor.rules import Rule

DEFAULT_CONFIG = Path("sgadvisor.toml")


class RuleException(Rule):
    """A ``[[pin]]`` or ``[[allow]]`` table: one rule (Terraform's argument names, exactly one
    destination) of one group, why, and until when."""

    group: str
    reason: str = Field(min_length=1)
    expires: date | None = None


class FixedAddress(BaseModel):
    """A ``[[fixed]]`` table: a partner address (or block) the user states does not rotate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str = Field(description="an address or CIDR, IPv4 or IPv6")
    reason: str = Field(min_length=1)

    @field_validator("address")
    @classmethod
    def _canonical(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR") from None


class ConfigFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: Path
    defaults: dict[str, Any] = {}
    commands: dict[str, dict[str, Any]] = {}
    pins: list[RuleException] = []
    allows: list[RuleException] = []
    fixed: list[FixedAddress] = []


def find_config_path(argv: Sequence[str]) -> Path | None:
    """The ``--config`` value in ``argv`` (read before parsing, since it supplies option defaults)."""
    for index, arg in enumerate(argv):
        if arg == "--config" and index + 1 < len(argv):
            return Path(argv[index + 1])
        if arg.startswith("--config="):
            return Path(arg.split("=", 1)[1])
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def load_config(path: Path, command_names: Sequence[str]) -> ConfigFile:
    """Read and check a config file; a wrong shape is an InputError naming the file and key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: cannot read config: not UTF-8 text ({exc.reason})") from None
    except ValueError as exc:  # an integer beyond Python's digit limit
        raise InputError(f"{path}: invalid TOML: {str(exc).split(':')[0]}") from None
    except RecursionError:  # tomllib recurses once per level of nested inline arrays and tables
        raise InputError(f"{path}: invalid TOML: nested too deep") from None
    defaults: dict[str, Any] = {}
    commands: dict[str, dict[str, Any]] = {}
    pins: list[RuleException] = []
    allows: list[RuleException] = []
    fixed: list[FixedAddress] = []
    for key, value in data.items():
        if key in ("pin", "allow", "fixed"):
            if not isinstance(value, list):
                raise InputError(f"{path}: '{key}' must be an array of tables ([[{key}]])")
            for index, table in enumerate(value):
                try:
                    if key == "fixed":
                        fixed.append(FixedAddress.model_validate(table))
                    else:
                        (pins if key == "pin" else allows).append(RuleException.model_validate(table))
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(p) for p in first["loc"])
                    raise InputError(f"{path}: [[{key}]] #{index + 1}: {where}: {first['msg']}") from None
        elif key in command_names and isinstance(value, dict):
            commands[key] = dict(value)
        elif isinstance(value, dict):
            raise InputError(
                f"{path}: unknown table [{key}]",
                hint=f"tables are the command names ({', '.join(command_names)}), "
                "[[pin]], [[allow]] and [[fixed]]",
            )
        else:
            defaults[key] = value
    return ConfigFile(path=path, defaults=defaults, commands=commands, pins=pins, allows=allows, fixed=fixed)


def build_default_map(
    config: ConfigFile, options_by_command: Mapping[str, Mapping[str, str]]
) -> dict[str, dict[str, Any]]:
    """Turn the file into click's ``default_map``: {command: {parameter name: value}}.

    ``options_by_command`` maps each command to {long option name: parameter name}. A key that no
    command accepts is an error, so a typo never silently does nothing.
    """
    every_option = {opt for options in options_by_command.values() for opt in options}
    for key in config.defaults:
        if key not in every_option:
            raise InputError(f"{config.path}: unknown option '{key}'", hint=_known(every_option))
    result: dict[str, dict[str, Any]] = {}
    for command, options in options_by_command.items():
        values = {options[k]: v for k, v in config.defaults.items() if k in options}
        for key, value in config.commands.get(command, {}).items():
            if key not in options:
                raise InputError(
                    f"{config.path}: [{command}] has unknown option '{key}'", hint=_known(options)
                )
            values[options[key]] = value
        if values:
            result[command] = values
    return result


def _known(options: Any) -> str:
    return "known options: " + ", ".join(sorted(options))
