"""The original module's config files (``config.yaml``, ``config.yml``, ``scripts_config.json``), read as
``orchestrate.yaml``: :func:`translate_legacy` maps their sections onto this package's schema.

The original's sections and their equivalents:

- ``default: {...}`` -> ``defaults: {...}``;
- ``skip: [path, ...]`` -> ``skip: [glob, ...]`` (a plain path is a glob that matches itself);
- ``timeout_override: {path: S}`` -> ``scripts: {path: {timeout: S}}`` (a ``scripts`` entry's own ``timeout``
  wins, as it did); a single number keeps its meaning here (every script);
- ``scripts: {path: {...}}`` -> ``scripts: {path: {...}}``; ``skip_reason`` is dropped (the reason shown is
  "skipped by configuration").

A ``config.yaml`` that has none of these sections is somebody else's file and is not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_orchestrator.scripts.locate import LEGACY_FILENAMES as LEGACY_FILENAMES


__all__ = ["LEGACY_FILENAMES", "LEGACY_KEYS", "legacy_keypath", "looks_like_legacy", "translate_legacy"]

#: its sections (``defaults`` is accepted too: the same thing under this package's name)
LEGACY_KEYS: tuple[str, ...] = ("default", "defaults", "skip", "timeout_override", "scripts")

_EQUIVALENTS = {
    "default": "`default` -> `defaults`",
    "skip": "`skip` -> `skip` (globs)",
    "timeout_override": "`timeout_override: {script: S}` -> `scripts: {script: {timeout: S}}`",
    "scripts": "`scripts` -> `scripts`",
}

# a path in the translated document -> the path in the file (for line numbers)
KeyMap = dict[tuple[str, ...], tuple[str, ...]]


def looks_like_legacy(data: Any) -> bool:
    """Whether a ``config.yaml`` is the original module's: a mapping with at least one of its sections."""
    return isinstance(data, Mapping) and any(key in data for key in LEGACY_KEYS)


def translate_legacy(data: Any) -> tuple[Any, KeyMap, str]:
    """``(document in orchestrate.yaml's schema, key map, deprecation note's list of equivalents)``.

    Anything not understood is passed through unchanged, so that validation reports it with its line.
    """
    if not isinstance(data, Mapping):
        return data, {}, ""
    keymap: KeyMap = {}
    out: dict[str, Any] = {}
    used: list[str] = []
    for key, value in data.items():
        if key == "default":
            out["defaults"] = value
            keymap[("defaults",)] = ("default",)
            used.append(_EQUIVALENTS["default"])
        elif key == "timeout_override" and isinstance(value, Mapping):
            used.append(_EQUIVALENTS["timeout_override"])
        else:
            out[key] = value
            if key in _EQUIVALENTS:
                used.append(_EQUIVALENTS[key])
    overrides = data.get("timeout_override")
    if isinstance(overrides, Mapping):
        raw_scripts = out.get("scripts")
        scripts: dict[Any, Any] = dict(raw_scripts) if isinstance(raw_scripts, Mapping) else {}
        for name, seconds in overrides.items():
            entry = scripts.get(name)
            if entry is None:
                scripts[name] = {"timeout": seconds}
                keymap[("scripts", str(name))] = ("timeout_override", str(name))
            elif isinstance(entry, Mapping) and "timeout" not in entry:
                scripts[name] = {**entry, "timeout": seconds}
            else:
                continue
            keymap[("scripts", str(name), "timeout")] = ("timeout_override", str(name))
        if raw_scripts is None or isinstance(raw_scripts, Mapping):
            out["scripts"] = scripts
    scripts_section = out.get("scripts")
    if isinstance(scripts_section, Mapping):
        out["scripts"] = {
            name: ({k: v for k, v in entry.items() if k != "skip_reason"} if isinstance(entry, Mapping) else entry)
            for name, entry in scripts_section.items()
        }
    return out, keymap, "; ".join(used)


def legacy_keypath(keymap: KeyMap, keypath: tuple[str, ...]) -> tuple[str, ...]:
    """Where a translated key path came from in the file: the longest mapped prefix, re-rooted."""
    for size in range(len(keypath), 0, -1):
        source = keymap.get(keypath[:size])
        if source is not None:
            return source + keypath[size:] if source[0] != "timeout_override" else source
    return keypath
