"""Fuzzing the configuration the orchestrator reads: ``orchestrate.yaml``, pipeline YAML, PEP 723 blocks and marker
arguments (slow suite; about 10,000 generated cases in all, a couple of minutes).

Every input is either accepted or rejected cleanly: a ``ConfigError`` whose message starts with the file (and the
line, where the file has lines to point at) for files, a ``ValueError`` with a message for marker arguments; never
any other exception. End to end, a rejected ``orchestrate.yaml`` is a usage error (exit 4) naming the file and line,
and nothing runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import re
import tempfile
from typing import Any

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from plugin_helpers import lean_inner_runs
import pytest
import yaml

from pytest_orchestrator.pipelines.loader import load_pipeline
from pytest_orchestrator.plugin.markers import check_foreign_timeout
from pytest_orchestrator.plugin.markers import parse_depends
from pytest_orchestrator.plugin.markers import parse_retry
from pytest_orchestrator.plugin.markers import parse_stage
from pytest_orchestrator.plugin.markers import parse_timeout
from pytest_orchestrator.scripts.config import get_script_config
from pytest_orchestrator.scripts.config import load_config
from pytest_orchestrator.scripts.errors import ConfigError
from pytest_orchestrator.scripts.pep723 import clear_metadata_cache
from pytest_orchestrator.scripts.pep723 import parse_script_metadata


pytestmark = pytest.mark.slow

CASES = 2500  # per generator: four generators, 10,000 cases

_FUZZ = settings(
    max_examples=CASES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

# -- values ---------------------------------------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    _text,
    st.sampled_from(["1", "0", "-1", "abc", "1.5", "", "  ", "x y", "scripts/a.py", "Exception", "TimeoutError"]),
)


def _values(keys: list[str]) -> st.SearchStrategy[Any]:
    """Plain YAML data whose mapping keys are mostly ``keys``."""
    key = st.one_of(st.sampled_from(keys), _text)
    return st.recursive(
        _scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(key, inner, max_size=4)),
        max_leaves=12,
    )


_CONFIG_KEYS = [
    "defaults", "skip", "timeout_override", "scripts", "timeout", "retry", "env", "args", "depends", "stage",
    "allowed_exit_codes", "max_attempts", "initial_delay", "scripts/a.py", "a.py", "../x.py", "/abs.py",
]  # fmt: skip
_PIPELINE_KEYS = [
    "name", "stages", "commands", "script", "pytest", "needs", "when", "timeout", "env", "retry", "cwd", "always",
    "on_failure", "build", "test", "allow_failure", "continue_on_error",
]  # fmt: skip
_FIELD_LINES = st.sampled_from(
    [
        "timeout = 5", "timeout = -1", "timeout = 'x'", 'depends = ["a"]', "depends = 3", "retry = 2",
        "retry = {max_attempts = 0}", 'args = ["--x"]', 'env = {A = "b"}', "env = {A = 1}", 'stage = "etl"',
        "allowed_exit_codes = [0, 3]", "allowed_exit_codes = ['x']", "unknown = 1", "timeout =", "[tool.other]",
        "[tool.orchestrate]", "# /// script", "# ///", "x = [", '"unterminated',
    ]
)  # fmt: skip


def _document(data: Any, noise: str, where: int) -> str:
    """``data`` as YAML, sometimes with ``noise`` spliced in at ``where`` (to reach the parser's errors too)."""
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    if noise:
        at = where % (len(text) + 1)
        text = text[:at] + noise + text[at:]
    return text


_noise = st.one_of(
    st.just(""),
    st.just(""),
    st.sampled_from([":", "- ", "{", "]", "\t", "  x: [", "&a", "*a", "!!python/object:os.system", "\x1f"]),
    _text,
)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="po-fuzz-") as name:
        root = Path(name)
        (root / "pyproject.toml").write_text("[project]\nname = 'fuzz'\n")  # the config walk stops here
        (root / "scripts").mkdir()
        (root / "scripts" / "a.py").write_text("print('a')\n")
        yield root


def _assert_clean(exc: ConfigError, path: Path) -> None:
    message = exc.message
    assert message.startswith(str(path)), message
    line = exc.context.get("line")
    if line is not None:
        assert message.startswith(f"{path}:{line}: "), message
        assert line >= 1
    assert "Traceback" not in message


# -- orchestrate.yaml -----------------------------------------------------------------------------------------------


@_FUZZ
@given(data=_values(_CONFIG_KEYS), noise=_noise, where=st.integers(0, 10**6))
def test_fuzz_orchestrate_yaml(folder: Path, data: Any, noise: str, where: int) -> None:
    path = folder / "orchestrate.yaml"
    path.write_text(_document(data, noise, where), encoding="utf-8")
    try:
        config = load_config(folder)
    except ConfigError as exc:
        _assert_clean(exc, path)
        return
    try:
        get_script_config(folder / "scripts" / "a.py", config=config)
    except ConfigError as exc:  # the script's own block is fine: a config value the merge rejects
        _assert_clean(exc, path)


# -- pipeline YAML --------------------------------------------------------------------------------------------------


@_FUZZ
@given(data=_values(_PIPELINE_KEYS), noise=_noise, where=st.integers(0, 10**6))
def test_fuzz_pipeline_yaml(folder: Path, data: Any, noise: str, where: int) -> None:
    path = folder / "pipeline.yaml"
    path.write_text(_document(data, noise, where), encoding="utf-8")
    try:
        load_pipeline(path)
    except ConfigError as exc:
        _assert_clean(exc, path)


# -- PEP 723 blocks -------------------------------------------------------------------------------------------------


@_FUZZ
@given(
    lines=st.lists(st.one_of(_FIELD_LINES, _text.map(lambda t: t.replace("\n", " "))), max_size=8),
    opening=st.sampled_from(["# /// script", "# /// script", "#/// script", "# /// scripts"]),
    closing=st.sampled_from(["# ///", "# ///", "", "# ////"]),
    twice=st.booleans(),
    prefix=st.sampled_from(["# ", "# ", "#", ""]),
)
def test_fuzz_pep723_blocks(
    folder: Path, lines: list[str], opening: str, closing: str, twice: bool, prefix: str
) -> None:
    body = [opening, "# [tool.orchestrate]", *(f"{prefix}{line}" for line in lines)]
    if closing:
        body.append(closing)
    if twice:
        body += body
    path = folder / "block.py"
    path.write_text("\n".join(body) + "\nprint('x')\n", encoding="utf-8")
    clear_metadata_cache()
    try:
        parse_script_metadata(path)
    except ConfigError as exc:
        _assert_clean(exc, path)
        assert exc.context.get("line") is not None, exc.message  # a block always has a line to point at


# -- marker arguments -----------------------------------------------------------------------------------------------

_PARSERS = {
    "depends": parse_depends,
    "retry": parse_retry,
    "timeout": parse_timeout,
    "foreign timeout": check_foreign_timeout,
    "stage": parse_stage,
}
_KWARGS = [
    "on", "name", "max_attempts", "initial_delay", "max_delay", "exponential_base", "jitter", "retry_on", "seconds",
    "timeout", "method", "func_only",
]  # fmt: skip
_marker_values = st.recursive(
    st.one_of(_scalars, st.sampled_from([Exception, ValueError, object, int, "signal", "thread"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner)),
    max_leaves=6,
)


@_FUZZ
@given(
    marker=st.sampled_from(sorted(_PARSERS)),
    args=st.lists(_marker_values, max_size=4),
    kwargs=st.dictionaries(st.one_of(st.sampled_from(_KWARGS), _text), _marker_values, max_size=3),
)
def test_fuzz_marker_arguments(marker: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    try:
        _PARSERS[marker](tuple(args), kwargs)
    except ValueError as exc:
        assert str(exc).strip(), f"{marker}{args}{kwargs}: a rejection without a message"


# -- end to end: a rejected configuration is a usage error, and nothing runs ----------------------------------------

_REJECTED = [
    "defaults:\n  timeout: abc\n",
    "defaults: [1, 2]\n",
    "scripts:\n  scripts/a.py:\n    retry: {max_attempts: -1}\n",
    "scripts:\n  scripts/a.py:\n    env: {A: [1]}\n",
    "skip: 3\n",
    "timeout_override: -5\n",
    "unknown_key: 1\n",
    "scripts:\n  scripts/a.py: {depends: 5}\n",
    "defaults:\n  timeout: 1\n  timeout: 2\n",
    "scripts: [\n",
]


@pytest.mark.parametrize("config", _REJECTED)
def test_a_rejected_config_runs_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, config: str
) -> None:
    lean_inner_runs(monkeypatch)
    pytester.makeini("[pytest]\norchestrate_scripts = scripts/*.py\n")
    (pytester.path / "scripts").mkdir()
    (pytester.path / "scripts" / "a.py").write_text("open('script-ran', 'w')\n")
    pytester.makepyfile(test_x="def test_x():\n    open('test-ran', 'w')\n")
    (pytester.path / "orchestrate.yaml").write_text(config)
    result = pytester.runpytest("--orchestrate", "-p", "no:cacheprovider")
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    assert re.search(r"orchestrate\.yaml:\d+: ", text), text
    assert "Traceback" not in text
    assert not (pytester.path / "script-ran").exists()
    assert not (pytester.path / "test-ran").exists()
