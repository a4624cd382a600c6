"""The unit stage of examples/ci/pipeline.yaml: a few fast tests of a tiny function."""

from __future__ import annotations

import pytest


def slugify(text: str) -> str:
    """Lower-case words joined by dashes."""
    return "-".join(word.lower() for word in text.split() if word.isalnum())


pytestmark = pytest.mark.stage("unit")


def test_slugify_joins_words() -> None:
    assert slugify("Hello World") == "hello-world"


def test_slugify_drops_punctuation_words() -> None:
    assert slugify("a - b") == "a-b"


@pytest.mark.parametrize(("text", "expected"), [("", ""), ("One", "one"), ("  spaced   out ", "spaced-out")])
def test_slugify_cases(text: str, expected: str) -> None:
    assert slugify(text) == expected
