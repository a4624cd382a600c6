"""Secrets masking: the values of secret-looking environment variables never leave the process in a report.

A variable is secret when its name contains ``TOKEN``, ``SECRET`` or ``PASSWORD``, or ends with ``_KEY`` (case
insensitive), or is one of the ``extra`` names (an ``fnmatch`` pattern such as ``DB_*`` works too). Its value is
replaced by ``***`` wherever it occurs: in a string, or anywhere inside dicts, lists and tuples (keys included).
Values shorter than :data:`MIN_SECRET_LENGTH` characters are not treated as secrets: masking every ``1`` or ``no``
in a report would destroy it without protecting anything.

Use :func:`mask_secrets` for a one-off, or build a :class:`SecretMasker` once and call it many times.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
import fnmatch
import os
import re
from typing import Any
from typing import TypeVar


__all__ = ["MASK", "MIN_SECRET_LENGTH", "SecretMasker", "is_secret_name", "mask_secrets", "secret_values"]

#: what a secret value is replaced with
MASK = "***"
#: values shorter than this are left alone
MIN_SECRET_LENGTH = 4

_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|_KEY$", re.IGNORECASE)

T = TypeVar("T")


def is_secret_name(name: str, extra: Iterable[str] = ()) -> bool:
    """Whether the environment variable ``name`` holds a secret (by the naming rule or one of ``extra``)."""
    if _SECRET_NAME.search(name):
        return True
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, pattern.upper()) for pattern in extra)


def secret_values(env: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> list[str]:
    """The values to mask, longest first (so a secret containing another is masked whole)."""
    env = os.environ if env is None else env
    extra = tuple(extra)
    values = {
        v for k, v in env.items() if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH and is_secret_name(k, extra)
    }
    return sorted(values, key=lambda v: (-len(v), v))


class SecretMasker:
    """Replaces the secret values found in ``env`` (default ``os.environ``, read now) by :data:`MASK`."""

    def __init__(self, env: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> None:
        self.values = secret_values(env, extra)
        self._pattern = re.compile("|".join(re.escape(v) for v in self.values)) if self.values else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        """``text`` with every secret value replaced."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def __call__(self, obj: T) -> T:
        """``obj`` with every secret masked: strings, and dicts, lists and tuples of them, recursively."""
        if self._pattern is None:
            return obj
        masked: T = self._walk(obj)
        return masked

    def _walk(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self._walk(k): self._walk(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._walk(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self._walk(v) for v in obj)
        return obj


def mask_secrets(text_or_obj: T, env: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> T:
    """``text_or_obj`` with the values of secret environment variables replaced by ``***``.

    :param env: the environment to read secrets from; ``os.environ`` by default.
    :param extra: more variable names (or ``fnmatch`` patterns) whose values are secret, e.g. from configuration.
    """
    return SecretMasker(env, extra)(text_or_obj)
