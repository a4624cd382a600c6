"""``RetryPolicy``: the backoff formula, jitter bounds, ``retry_on`` filtering and validation."""

from __future__ import annotations

import dataclasses
import random

from hypothesis import given
from hypothesis import strategies as st
import pytest

from pytest_orchestrator import RetryPolicy


def test_defaults_match_the_documented_signature() -> None:
    """``RetryPolicy()`` is 3 attempts, 1 s initial delay, 60 s cap, base 2, no jitter, retrying any Exception."""
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.initial_delay, policy.max_delay) == (3, 1.0, 60.0)
    assert (policy.exponential_base, policy.jitter, policy.retry_on) == (2.0, 0.0, (Exception,))


def test_docstring_example_delays() -> None:
    """``RetryPolicy(max_attempts=3, initial_delay=0.5)`` waits 0.5 s, then 1 s."""
    policy = RetryPolicy(max_attempts=3, initial_delay=0.5)
    assert policy.get_delay(1) == pytest.approx(0.5)
    assert policy.get_delay(2) == pytest.approx(1.0)


@given(
    initial=st.floats(0, 10, allow_nan=False),
    base=st.floats(1, 5, allow_nan=False),
    cap=st.floats(0, 100, allow_nan=False),
    attempt=st.integers(1, 40),
)
def test_delay_formula_without_jitter(initial: float, base: float, cap: float, attempt: int) -> None:
    """``get_delay(n) == min(initial_delay * exponential_base ** (n - 1), max_delay)``."""
    policy = RetryPolicy(initial_delay=initial, exponential_base=base, max_delay=cap)
    expected = min(initial * base ** (attempt - 1), cap)
    assert policy.get_delay(attempt) == pytest.approx(expected)


def test_delays_grow_then_hit_the_cap() -> None:
    """Delays are non-decreasing with the attempt number and never pass ``max_delay``."""
    policy = RetryPolicy(initial_delay=0.1, exponential_base=3.0, max_delay=5.0)
    delays = [policy.get_delay(n) for n in range(1, 12)]
    assert delays == sorted(delays)
    assert delays[0] == pytest.approx(0.1)
    assert delays[1] == pytest.approx(0.3)
    assert max(delays) == pytest.approx(5.0)


def test_huge_attempt_numbers_do_not_overflow() -> None:
    """A very large attempt number gives ``max_delay``, not an ``OverflowError``."""
    policy = RetryPolicy(initial_delay=1.0, exponential_base=10.0, max_delay=30.0)
    assert policy.get_delay(10_000) == pytest.approx(30.0)


def test_attempt_is_one_based() -> None:
    """``get_delay(0)`` is a usage error."""
    with pytest.raises(ValueError, match="1-based"):
        RetryPolicy().get_delay(0)


@pytest.mark.parametrize("jitter", [0.1, 0.5, 1.0])
def test_jitter_stays_within_bounds_and_spreads(jitter: float) -> None:
    """With ``jitter=j`` each delay lies in ``[d * (1 - j), d * (1 + j)]``, and delays really vary both ways."""
    policy = RetryPolicy(initial_delay=0.4, exponential_base=2.0, max_delay=100.0, jitter=jitter)
    rng = random.Random(1234)
    for attempt in (1, 2, 3):
        base = 0.4 * 2 ** (attempt - 1)
        samples = [policy.get_delay(attempt, rng=rng) for _ in range(400)]
        assert all(base * (1 - jitter) - 1e-9 <= s <= base * (1 + jitter) + 1e-9 for s in samples)
        assert min(samples) < base < max(samples)
        assert all(s >= 0 for s in samples)


def test_jitter_uses_the_module_rng_without_an_explicit_one() -> None:
    """Without ``rng=`` jitter still applies (delays differ between calls) and stays in bounds."""
    policy = RetryPolicy(initial_delay=1.0, jitter=0.5)
    samples = {policy.get_delay(1) for _ in range(50)}
    assert len(samples) > 1
    assert all(0.5 <= s <= 1.5 for s in samples)


def test_zero_delay_stays_zero_with_jitter() -> None:
    """``initial_delay=0`` means no waiting at all, jitter or not."""
    assert RetryPolicy(initial_delay=0.0, jitter=0.9).get_delay(3) == 0.0


def test_should_retry_counts_attempts() -> None:
    """Failed attempt ``n`` gets another try only while ``n < max_attempts``."""
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(ValueError(), 1)
    assert policy.should_retry(ValueError(), 2)
    assert not policy.should_retry(ValueError(), 3)
    assert not RetryPolicy(max_attempts=1).should_retry(ValueError(), 1)


def test_should_retry_filters_on_retry_on() -> None:
    """Only instances of ``retry_on`` (subclasses included) are retried."""
    policy = RetryPolicy(max_attempts=5, retry_on=(ConnectionError, TimeoutError))
    assert policy.should_retry(ConnectionRefusedError(), 1)  # subclass of ConnectionError
    assert policy.should_retry(TimeoutError(), 1)
    assert not policy.should_retry(ValueError(), 1)
    assert not policy.should_retry(KeyError(), 1)


@pytest.mark.parametrize("value", [ValueError, [ValueError, KeyError], (ValueError,)])
def test_retry_on_is_normalised_to_a_tuple(value: object) -> None:
    """A single class or a list of classes is accepted and stored as a tuple."""
    policy = RetryPolicy(retry_on=value)  # type: ignore[arg-type]
    assert isinstance(policy.retry_on, tuple)
    assert ValueError in policy.retry_on
    assert policy.should_retry(ValueError(), 1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": -1},
        {"max_attempts": 1.5},
        {"max_attempts": True},
        {"initial_delay": -0.1},
        {"max_delay": -1},
        {"initial_delay": float("nan")},
        {"jitter": -0.1},
        {"jitter": 1.5},
        {"exponential_base": 0.5},
        {"retry_on": ("ValueError",)},
        {"retry_on": (int,)},
    ],
    ids=lambda kw: ",".join(f"{k}={v!r}" for k, v in kw.items()),
)
def test_invalid_settings_raise_value_error(kwargs: dict[str, object]) -> None:
    """Bad settings are rejected when the policy is made, naming the setting."""
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_is_immutable() -> None:
    """A policy is a frozen value: the engine, runners and plugin can share one object."""
    policy = RetryPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_attempts = 5  # type: ignore[misc]


def test_to_dict_is_json_ready() -> None:
    """``to_dict()`` lists every setting with ``retry_on`` as class names."""
    data = RetryPolicy(max_attempts=4, retry_on=(KeyError,)).to_dict()
    assert data["max_attempts"] == 4
    assert data["retry_on"] == ["KeyError"]
    assert set(data) == {"max_attempts", "initial_delay", "max_delay", "exponential_base", "jitter", "retry_on"}


def test_from_value() -> None:
    """``from_value`` accepts None, an attempt count, a mapping or a policy (returned as is)."""
    assert RetryPolicy.from_value(None) is None
    assert RetryPolicy.from_value(4) == RetryPolicy(max_attempts=4)
    assert RetryPolicy.from_value({"max_attempts": 2, "initial_delay": 0.0}) == RetryPolicy(
        max_attempts=2, initial_delay=0.0
    )
    policy = RetryPolicy(max_attempts=7)
    assert RetryPolicy.from_value(policy) is policy


@pytest.mark.parametrize("value", [True, "3", 2.5, {"attempts": 3}, 0])
def test_from_value_rejects_bad_values(value: object) -> None:
    """Booleans, strings, floats, unknown keys and ``0`` attempts are ``ValueError``."""
    with pytest.raises(ValueError):
        RetryPolicy.from_value(value)
