"""Where the configuration governing a folder is: the walk that :func:`~.config.load_config` makes, without reading
any settings (the pytest plugin asks this first, and loads the config module only where there is a file to read).

Walking up from a folder, the first folder holding ``orchestrate.yaml`` or ``orchestrate.yml`` wins; a
``pyproject.toml`` ends the walk (it is the configuration when it mentions ``orchestrate``: whether it has a
``[tool.orchestrate]`` table is for the config module to say), and so does a ``.git``. The original module's
config files met on the way are the fallback.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


__all__ = ["CONFIG_FILENAMES", "LEGACY_FILENAMES", "Located", "locate_config"]

#: the configuration files, in the order they are looked for in each folder
CONFIG_FILENAMES: tuple[str, ...] = ("orchestrate.yaml", "orchestrate.yml")
#: the original module's config files (read, translated, with a deprecation warning, where nothing else is found)
LEGACY_FILENAMES: tuple[str, ...] = ("config.yaml", "config.yml", "scripts_config.json")


class Located(NamedTuple):
    """What the walk found."""

    #: an ``orchestrate.yaml``/``.yml``, or the ``pyproject.toml`` that ended the walk when it mentions orchestrate
    config: Path | None
    #: the original module's config files met on the way, nearest first
    legacy: tuple[Path, ...]

    @property
    def anything(self) -> bool:
        """Whether there is any file to read."""
        return self.config is not None or bool(self.legacy)


def locate_config(folder: Path) -> Located:
    """The configuration files that may govern ``folder`` (an absolute folder path)."""
    legacy: list[Path] = []
    for current in (folder, *folder.parents):
        for name in CONFIG_FILENAMES:
            candidate = current / name
            if candidate.is_file():
                return Located(candidate, tuple(legacy))
        legacy += [current / name for name in LEGACY_FILENAMES if (current / name).is_file()]
        pyproject = current / "pyproject.toml"
        if pyproject.is_file():
            try:
                mentioned = b"orchestrate" in pyproject.read_bytes()
            except OSError:
                mentioned = True  # let the config module say what is wrong with it
            return Located(pyproject if mentioned else None, tuple(legacy))
        if (current / ".git").exists():
            break
    return Located(None, tuple(legacy))
