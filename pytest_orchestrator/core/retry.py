"""``RetryPolicy``: how many attempts, how long to wait between them, and which errors deserve another try.

The policy is pure: it computes delays and answers questions, it never sleeps. The engine, the runners and the
pytest plugin all apply the same policy object.
"""

from __future__ import annotations

from collections.abc import Iterable
import dataclasses
import math
import random
from typing import Any


__all__ = ["RetryPolicy"]


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Retry with exponential backoff.

    ``get_delay(attempt) = min(initial_delay * exponential_base ** (attempt - 1), max_delay)``, spread by
    ``+-jitter`` (a fraction: ``jitter=0.1`` varies each delay by up to 10 %). ``attempt`` is the attempt that
    just failed, starting at 1. Only exceptions that are instances of ``retry_on`` are retried.

    Usage::

        RetryPolicy(max_attempts=3, initial_delay=0.5)          # waits 0.5 s, then 1 s
        RetryPolicy(max_attempts=5, retry_on=(ConnectionError,))
    """

    max_attempts: int = 3
    initial_delay: float = 1.0
    max_delay: float = 60.0
    exponential_base: float = 2.0
    jitter: float = 0.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        retry_on: Any = self.retry_on
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
        retry_on = tuple(retry_on) if isinstance(retry_on, Iterable) else retry_on
        if not isinstance(retry_on, tuple) or not all(
            isinstance(c, type) and issubclass(c, BaseException) for c in retry_on
        ):
            raise ValueError(f"retry_on must be exception classes, got {self.retry_on!r}")
        object.__setattr__(self, "retry_on", retry_on)
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ValueError(f"max_attempts must be an integer >= 1, got {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        for field in ("initial_delay", "max_delay", "jitter"):
            value = getattr(self, field)
            if not isinstance(value, int | float) or math.isnan(value) or value < 0:
                raise ValueError(f"{field} must be a number >= 0, got {value!r}")
        if not isinstance(self.exponential_base, int | float) or self.exponential_base < 1:
            raise ValueError(f"exponential_base must be >= 1, got {self.exponential_base!r}")
        if self.jitter > 1:
            raise ValueError(f"jitter is a fraction between 0 and 1, got {self.jitter!r}")

    def get_delay(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError(f"attempt is 1-based, got {attempt}")
        try:
            delay = self.initial_delay * self.exponential_base ** (attempt - 1)
        except OverflowError:
            delay = self.max_delay
        delay = min(delay, self.max_delay)
        if self.jitter and delay:
            spread = delay * self.jitter
            delay += (rng or random).uniform(-spread, spread)
        return max(0.0, delay)

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether failed attempt ``attempt`` (1-based) with ``error`` gets another try."""
        return attempt < self.max_attempts and isinstance(error, self.retry_on)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["retry_on"] = [c.__name__ for c in self.retry_on]
        return data

    @classmethod
    def from_value(cls, value: Any) -> RetryPolicy | None:
        """Build a policy from what configs and markers say: ``None``, an int (attempts), a dict or a policy."""
        if value is None or isinstance(value, RetryPolicy):
            return value
        if isinstance(value, bool):
            raise ValueError(f"retry must be a number of attempts or a mapping, got {value!r}")
        if isinstance(value, int):
            return cls(max_attempts=value)
        if isinstance(value, dict):
            unknown = set(value) - {f.name for f in dataclasses.fields(cls)}
            if unknown:
                raise ValueError(f"unknown retry setting(s): {', '.join(sorted(unknown))}")
            return cls(**value)
        raise ValueError(f"retry must be a number of attempts or a mapping, got {value!r}")
