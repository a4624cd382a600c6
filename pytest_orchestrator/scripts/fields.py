"""The settings a script may carry (inline or in a config file), and their validation.

:func:`normalize_field` checks one setting and returns its normalized value; :func:`unknown_key_message` words the
error for a key that is not a setting. Shared by the inline metadata (:mod:`.pep723`) and the config files
(:mod:`.config`), so both accept and refuse the same values with the same words.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
import difflib
from typing import Any

from pytest_orchestrator.core.limits import check_seconds
from pytest_orchestrator.core.retry import RetryPolicy


__all__ = ["FIELD_KEYS", "normalize_field", "unknown_key_message"]

#: the settings a script may carry, inline or in a config file
FIELD_KEYS: tuple[str, ...] = ("depends", "timeout", "retry", "args", "env", "stage", "allowed_exit_codes")


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _string_list(key: str, value: Any, *, allow_single: bool, coerce_numbers: bool) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) and allow_single:
        value = [value]
    if not isinstance(value, list | tuple):
        expected = "a string or a list of strings" if allow_single else "a list of strings"
        raise ValueError(f"{key} must be {expected}, got {_type_name(value)} {value!r}")
    items: list[str] = []
    for item in value:
        if coerce_numbers and isinstance(item, int | float) and not isinstance(item, bool):
            items.append(str(item))
        elif isinstance(item, str):
            items.append(item)
        else:
            raise ValueError(f"{key} must be a list of strings, got an item {_type_name(item)} {item!r}")
    return tuple(items)


def normalize_field(key: str, value: Any) -> Any:
    """Validate one script setting and return its normalized value; raise ``ValueError`` naming the problem.

    ``depends`` and ``args`` become tuples of strings, ``allowed_exit_codes`` a tuple of ints, ``timeout`` a float
    (or ``None``), ``retry`` a :class:`RetryPolicy` (or ``None``), ``env`` a ``dict[str, str]``.
    """
    if key == "depends":
        depends = _string_list(key, value, allow_single=True, coerce_numbers=False)
        if any(not d.strip() for d in depends):
            raise ValueError("depends must not contain empty names")
        return depends
    if key == "args":
        return _string_list(key, value, allow_single=False, coerce_numbers=True)
    if key == "timeout":
        if value is None:
            return None
        return check_seconds(value, "timeout")
    if key == "retry":
        if isinstance(value, Mapping):
            value = dict(value)
        try:
            return RetryPolicy.from_value(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid retry: {exc}") from None
    if key == "env":
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError(f"env must be a mapping of names to strings, got {_type_name(value)} {value!r}")
        env: dict[str, str] = {}
        for name, item in value.items():
            if not isinstance(name, str) or not name or "=" in name:
                raise ValueError(f"env names must be non-empty strings without '=', got {name!r}")
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                hint = " (quote it)" if isinstance(item, bool) else ""
                raise ValueError(f"env value of {name!r} must be a string{hint}, got {_type_name(item)} {item!r}")
            env[name] = str(item)
        return env
    if key == "stage":
        if value is not None and not isinstance(value, str):
            raise ValueError(f"stage must be a string, got {_type_name(value)} {value!r}")
        return value
    if key == "allowed_exit_codes":
        codes = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if (
            not isinstance(codes, list | tuple)
            or not codes
            or any(isinstance(c, bool) or not isinstance(c, int) for c in codes)
        ):
            raise ValueError(f"allowed_exit_codes must be an integer or a non-empty list of integers, got {value!r}")
        return tuple(codes)
    raise ValueError(f"unknown setting {key!r}")


def unknown_key_message(key: Any, allowed: Iterable[str], where: str) -> tuple[str, list[str]]:
    """``(message, suggestions)`` for a key that is not one of ``allowed``: close matches are suggested, else the
    known keys are listed."""
    known = list(allowed)
    suggestions = difflib.get_close_matches(str(key), known, n=3, cutoff=0.6)
    message = f"unknown key {key!r} in {where}"
    if suggestions:
        message += "; did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
    else:
        message += f" (known keys: {', '.join(known)})"
    return message, suggestions
