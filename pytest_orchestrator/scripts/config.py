"""Project configuration for scripts: ``orchestrate.yaml`` (or ``.yml``), or ``[tool.orchestrate]`` in pyproject.

:func:`load_config` finds and validates the file; :func:`get_script_config` merges, for one script, the package
defaults, the config's ``defaults``, the script's inline metadata, the config's entry for the script and
``timeout_override``, in that order. The schema::

    defaults:                       # applied to every script
      timeout: 60
      retry: 1                      # attempts, or a mapping of RetryPolicy arguments
      env: {A: b}
      args: []
      allowed_exit_codes: [0]
      stage: null
    skip: ["scripts/legacy/*.py"]   # globs on script paths relative to the config's folder
    timeout_override: 120           # forces this timeout on every script
    scripts:
      scripts/load.py:              # relative to the config's folder; a trailing part (``load.py``) also matches
        depends: [extract]
        timeout: 10
        retry: {max_attempts: 3, initial_delay: 0.1}
        args: ["--x"]
        env: {K: v}
        stage: etl
        allowed_exit_codes: [0, 3]
        skip: false                 # true: do not run it; overrides the ``skip`` globs either way

The original module's ``config.yaml`` / ``config.yml`` / ``scripts_config.json`` are read too, when no
``orchestrate.yaml`` (or ``[tool.orchestrate]``) governs the folder, translated by :mod:`.legacy` and with a
deprecation note (``OrchestrateConfig.deprecation``, also a ``DeprecationWarning``) naming the equivalent keys.

PyYAML is imported only when a YAML file is actually read.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import dataclasses
import functools
import json
import os
from pathlib import Path
import posixpath
import tomllib
from typing import Any
import warnings

from pytest_orchestrator.core.limits import check_seconds
from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.scripts.documents import load_yaml_document
from pytest_orchestrator.scripts.documents import read_text
from pytest_orchestrator.scripts.errors import ConfigError
from pytest_orchestrator.scripts.fields import FIELD_KEYS
from pytest_orchestrator.scripts.fields import normalize_field
from pytest_orchestrator.scripts.fields import unknown_key_message
from pytest_orchestrator.scripts.globs import glob_match
from pytest_orchestrator.scripts.legacy import legacy_keypath
from pytest_orchestrator.scripts.legacy import looks_like_legacy
from pytest_orchestrator.scripts.legacy import translate_legacy
from pytest_orchestrator.scripts.lines import toml_error
from pytest_orchestrator.scripts.lines import toml_key_line
from pytest_orchestrator.scripts.lines import yaml_key_line
from pytest_orchestrator.scripts.locate import CONFIG_FILENAMES as CONFIG_FILENAMES
from pytest_orchestrator.scripts.locate import Located
from pytest_orchestrator.scripts.locate import locate_config
from pytest_orchestrator.scripts.pep723 import parse_script_metadata


__all__ = [
    "CONFIG_FILENAMES",
    "ConfigError",
    "OrchestrateConfig",
    "get_script_config",
    "load_config",
    "load_located",
    "package_defaults",
]

_TOP_KEYS: tuple[str, ...] = ("defaults", "skip", "timeout_override", "scripts")
_DEFAULT_KEYS: tuple[str, ...] = tuple(k for k in FIELD_KEYS if k != "depends")
_ENTRY_KEYS: tuple[str, ...] = (*FIELD_KEYS, "skip")
_LIST_FIELDS = frozenset({"depends", "args", "allowed_exit_codes"})

# keypath inside the orchestrate table -> 1-based line, or None
_LineOf = Callable[[tuple[str, ...]], "int | None"]


def package_defaults() -> dict[str, Any]:
    """A new dict of every script setting at its package default (the first layer of :func:`get_script_config`)."""
    return {
        "depends": [],
        "timeout": None,
        "retry": None,
        "args": [],
        "env": {},
        "stage": None,
        "allowed_exit_codes": [0],
        "skip": False,
    }


def _jsonable(settings: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, RetryPolicy):
            out[key] = value.to_dict()
        elif isinstance(value, list | tuple):
            out[key] = list(value)
        elif isinstance(value, dict):
            out[key] = dict(value)
        else:
            out[key] = value
    return out


@dataclasses.dataclass
class OrchestrateConfig:
    """A validated configuration. ``path`` is ``None`` when no file was found (every setting at its default).

    ``defaults`` and each ``scripts`` entry hold only the keys the file sets, normalized: ``timeout`` a float,
    ``retry`` a :class:`RetryPolicy`, ``depends``/``args``/``allowed_exit_codes`` lists, ``env`` a dict of
    strings. ``scripts`` keys are normalized posix paths relative to ``root``; ``raw`` is the table as read.
    """

    path: Path | None = None
    root: Path = dataclasses.field(default_factory=Path.cwd)
    defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    skip: tuple[str, ...] = ()
    timeout_override: float | None = None
    scripts: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    raw: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: set when the file is the original module's (``config.yaml``, ...): what to move to ``orchestrate.yaml``
    deprecation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-friendly dict."""
        return {
            "path": None if self.path is None else str(self.path),
            "root": str(self.root),
            "defaults": _jsonable(self.defaults),
            "skip": list(self.skip),
            "timeout_override": self.timeout_override,
            "scripts": {name: _jsonable(entry) for name, entry in self.scripts.items()},
            "raw": self.raw,
            "deprecation": self.deprecation,
        }

    def _relative_parts(self, script_path: str | os.PathLike[str], root: Path) -> tuple[str, ...]:
        script = Path(script_path)
        if not script.is_absolute():
            script = root / script
        rel = os.path.relpath(script.resolve(), root.resolve())
        return tuple(p for p in Path(rel).as_posix().split("/") if p not in ("", "."))

    def find_entry(
        self, script_path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
    ) -> tuple[str, dict[str, Any]] | None:
        """The ``scripts`` entry for a script as ``(key, settings)``, or ``None``.

        An entry matches when its path equals the script's path relative to ``root`` (default: this config's
        root) or is a trailing run of whole components of it; the entry with the most components wins.
        """
        parts = self._relative_parts(script_path, Path(root) if root is not None else self.root)
        best: tuple[str, dict[str, Any]] | None = None
        best_len = 0
        for key, entry in self.scripts.items():
            key_parts = tuple(key.split("/"))
            if len(key_parts) <= len(parts) and parts[len(parts) - len(key_parts) :] == key_parts:
                if len(key_parts) > best_len:
                    best, best_len = (key, entry), len(key_parts)
        return best

    def is_skipped(self, script_path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> bool:
        """Whether the config says not to run the script: its entry's ``skip`` if set, else the ``skip`` globs
        (matched against the path relative to ``root``, default this config's root, and against the file name)."""
        base = Path(root) if root is not None else self.root
        found = self.find_entry(script_path, base)
        if found is not None and "skip" in found[1]:
            return bool(found[1]["skip"])
        parts = self._relative_parts(script_path, base)
        if not parts:
            return False
        rel = "/".join(parts)
        return any(glob_match(pattern, rel) or glob_match(pattern, parts[-1]) for pattern in self.skip)


# --------------------------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------------------------


class _Validator:
    def __init__(self, path: Path, root: Path, line_of: _LineOf, top_label: str) -> None:
        self.path = path
        self.root = root
        self.line_of = line_of
        self.top_label = top_label

    def error(self, message: str, keypath: tuple[str, ...], **context: Any) -> ConfigError:
        return ConfigError(message, path=self.path, line=self.line_of(keypath), **context)

    def unknown(self, key: Any, allowed: tuple[str, ...], keypath: tuple[str, ...], where: str) -> ConfigError:
        message, suggestions = unknown_key_message(key, allowed, where)
        return self.error(message, (*keypath, str(key)), key=str(key), suggestions=suggestions)

    def fields(self, section: Any, allowed: tuple[str, ...], keypath: tuple[str, ...], where: str) -> dict[str, Any]:
        if section is None:
            return {}
        if not isinstance(section, Mapping):
            raise self.error(
                f"{where} must be a mapping, got {type(section).__name__} {section!r}",
                keypath,
                key=keypath[-1] if keypath else None,
            )
        settings: dict[str, Any] = {}
        for key, value in section.items():
            if key == "depends" and "depends" not in allowed:
                raise self.error(f"'depends' cannot be set in {where}; give it per script", (*keypath, key), key=key)
            if not isinstance(key, str) or key not in allowed:
                raise self.unknown(key, allowed, keypath, where)
            if key == "skip":
                if not isinstance(value, bool):
                    raise self.error(f"{where}: skip must be true or false, got {value!r}", (*keypath, key), key=key)
                settings[key] = value
                continue
            try:
                normalized = normalize_field(key, value)
            except ValueError as exc:
                raise self.error(f"{where}: {exc}", (*keypath, key), key=key) from None
            settings[key] = list(normalized) if key in _LIST_FIELDS else normalized
        return settings

    def entry_key(self, name: str) -> str:
        text = name.replace("\\", "/").strip()
        if posixpath.isabs(text):
            text = Path(os.path.relpath(text, self.root)).as_posix()
        return posixpath.normpath(text)

    def build(self, data: Any) -> OrchestrateConfig:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise self.error(f"the configuration must be a mapping, got {type(data).__name__}", ())
        for key in data:
            if not isinstance(key, str) or key not in _TOP_KEYS:
                raise self.unknown(key, _TOP_KEYS, (), self.top_label)
        defaults = self.fields(data.get("defaults"), _DEFAULT_KEYS, ("defaults",), "defaults")

        skip_value = data.get("skip")
        if isinstance(skip_value, str):
            skip_value = [skip_value]
        if skip_value is None:
            skip_value = []
        if not isinstance(skip_value, list) or not all(isinstance(s, str) and s.strip() for s in skip_value):
            raise self.error(f"skip must be a list of glob patterns, got {skip_value!r}", ("skip",), key="skip")

        timeout_override = data.get("timeout_override")
        if timeout_override is not None:
            try:
                timeout_override = check_seconds(timeout_override, "timeout_override")
            except ValueError as exc:
                raise self.error(str(exc), ("timeout_override",), key="timeout_override") from None

        raw_scripts = data.get("scripts")
        if raw_scripts is None:
            raw_scripts = {}
        if not isinstance(raw_scripts, Mapping):
            raise self.error(
                f"scripts must be a mapping of script paths to settings, got {type(raw_scripts).__name__}",
                ("scripts",),
                key="scripts",
            )
        scripts: dict[str, dict[str, Any]] = {}
        for name, entry in raw_scripts.items():
            if not isinstance(name, str) or not name.strip():
                raise self.error(
                    f"scripts: each key must be a script path, got {name!r}", ("scripts", str(name)), key=str(name)
                )
            normalized = self.entry_key(name)
            if normalized in scripts:
                raise self.error(
                    f"scripts: {name!r} names the same script as another entry ({normalized!r})",
                    ("scripts", name),
                    key=name,
                )
            scripts[normalized] = self.fields(entry, _ENTRY_KEYS, ("scripts", name), f"scripts[{name!r}]")

        return OrchestrateConfig(
            path=self.path,
            root=self.root,
            defaults=defaults,
            skip=tuple(skip_value),
            timeout_override=timeout_override,
            scripts=scripts,
            raw=dict(data),
        )


# --------------------------------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------------------------------


def _load_yaml_config(path: Path) -> OrchestrateConfig:
    node, data = load_yaml_document(path)
    return _Validator(path, path.parent, functools.partial(yaml_key_line, node), "the top level").build(data)


def _load_pyproject_config(path: Path) -> OrchestrateConfig | None:
    text = read_text(path)
    if "orchestrate" not in text:  # do not parse (or complain about) pyprojects that cannot concern us
        return None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem, line = toml_error(exc)
        raise ConfigError(f"invalid TOML: {problem}", path=path, line=line) from None
    tool = document.get("tool")
    if not isinstance(tool, dict) or "orchestrate" not in tool:
        return None
    lines = text.splitlines()

    def line_of(keypath: tuple[str, ...]) -> int | None:
        return toml_key_line(lines, ("tool", "orchestrate", *keypath))

    validator = _Validator(path, path.parent, line_of, "[tool.orchestrate]")
    if not isinstance(tool["orchestrate"], dict):
        raise validator.error("[tool.orchestrate] must be a table", (), key="orchestrate")
    return validator.build(tool["orchestrate"])


def _read_legacy(path: Path) -> tuple[Any, Any] | None:
    """``(node or None, data)`` of one of the original's files, or ``None`` when it is not one (a ``config.yaml``
    without any of the original's sections)."""
    if path.suffix == ".json":
        text = read_text(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from None
        try:  # JSON is YAML: its node tree gives the lines of keys
            node, _ = load_yaml_document(path)
        except ConfigError:
            node = None
        return node, data
    node, data = load_yaml_document(path)
    return (node, data) if looks_like_legacy(data) else None


def _load_legacy_config(path: Path, node: Any, data: Any) -> OrchestrateConfig:
    translated, keymap, equivalents = translate_legacy(data)

    def line_of(keypath: tuple[str, ...]) -> int | None:
        return yaml_key_line(node, legacy_keypath(keymap, keypath)) if node is not None else None

    config = _Validator(path, path.parent, line_of, "the top level").build(translated)
    config.raw = dict(data) if isinstance(data, Mapping) else {}
    config.deprecation = (
        f"{path}: the original module's {path.name} is deprecated; move its settings to orchestrate.yaml"
        + (f" ({equivalents})" if equivalents else "")
    )
    warnings.warn(config.deprecation, DeprecationWarning, stacklevel=3)
    return config


def load_config(start: str | os.PathLike[str] = ".") -> OrchestrateConfig:
    """Find and validate the configuration that governs ``start`` (a file or a folder).

    Walks up from ``start`` and takes the first folder holding ``orchestrate.yaml``, ``orchestrate.yml`` or a
    ``pyproject.toml`` with a ``[tool.orchestrate]`` table (checked in that order). The walk stops at the project
    root, the first folder with a ``pyproject.toml`` or a ``.git`` (inclusive), or at the filesystem root. With no
    config the result is an empty one (``path=None``, ``root`` = the start folder).

    Where none of those is found, the original module's ``config.yaml``, ``config.yml`` or ``scripts_config.json``
    met on the same walk (the nearest) is read instead, translated (see :mod:`.legacy`), with
    ``deprecation`` set and a ``DeprecationWarning``: ``orchestrate.yaml`` wins where both exist.

    Raises :class:`ConfigError` (naming file and line) for malformed or invalid files and ``FileNotFoundError``
    when ``start`` does not exist.
    """
    start_path = Path(start)
    if not start_path.exists():
        raise FileNotFoundError(f"cannot look for a configuration from {str(start_path)!r}: it does not exist")
    start_path = start_path.resolve()
    folder = start_path if start_path.is_dir() else start_path.parent
    return load_located(locate_config(folder), folder)


def load_located(located: Located, folder: Path) -> OrchestrateConfig:
    """:func:`load_config` of ``folder`` (resolved) once its walk is made (``located``)."""
    if located.config is not None:
        if located.config.name != "pyproject.toml":
            return _load_yaml_config(located.config)
        config = _load_pyproject_config(located.config)
        if config is not None:
            return config
    for candidate in located.legacy:
        found = _read_legacy(candidate)
        if found is not None:
            return _load_legacy_config(candidate, *found)
    return OrchestrateConfig(path=None, root=folder)


def get_script_config(
    script: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    config: OrchestrateConfig | None = None,
) -> dict[str, Any]:
    """The effective settings of one script, as a new plain dict.

    Keys: ``depends`` (list of str), ``timeout`` (float or None), ``retry`` (RetryPolicy or None), ``args`` (list
    of str), ``env`` (dict), ``stage`` (str or None), ``allowed_exit_codes`` (list of int), ``skip`` (bool).

    Layers, later ones winning: package defaults, the config's ``defaults``, the script's inline metadata, the
    config's ``scripts`` entry for the script, ``timeout_override``. ``env`` merges key by key; every other
    setting is replaced whole. ``root`` (default ``config.root``) is what entry paths and ``skip`` globs are
    relative to; a relative ``script`` is taken relative to ``root``, else ``config.root``, else the current
    folder. ``config=None`` loads the config that governs the script's folder.
    """
    script_path = Path(script)
    if not script_path.is_absolute():
        if root is not None:
            script_path = Path(root) / script_path
        elif config is not None:
            script_path = config.root / script_path
    script_path = script_path.resolve()
    if not script_path.is_file():
        raise FileNotFoundError(f"script {str(script_path)!r} does not exist")
    if config is None:
        config = load_config(script_path.parent)
    base = Path(root) if root is not None else config.root

    result = package_defaults()

    def apply(layer: Mapping[str, Any]) -> None:
        for key, value in layer.items():
            if key == "env":
                result["env"] = {**result["env"], **value}
            elif key in _LIST_FIELDS:
                result[key] = list(value)
            else:
                result[key] = value

    apply(config.defaults)
    metadata = parse_script_metadata(script_path)
    apply({key: getattr(metadata, key) for key in metadata.raw if key in FIELD_KEYS})
    found = config.find_entry(script_path, base)
    if found is not None:
        apply(found[1])
    if config.timeout_override is not None:
        result["timeout"] = config.timeout_override
    result["skip"] = config.is_skipped(script_path, base)
    return result
