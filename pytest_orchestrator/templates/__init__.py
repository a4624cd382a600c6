"""Parameterised, validated workflow factories (the original module's ``workflows``).

Usage::

    from pytest_orchestrator.templates import ci_pipeline, etl, fan_out, retry_until

    results = asyncio.run(fan_out(range(10), square, reduce=sum, max_concurrency=4).run())
    results["reduce"]
"""

from __future__ import annotations

from pytest_orchestrator.templates.factories import CI_STAGES
from pytest_orchestrator.templates.factories import ci_pipeline
from pytest_orchestrator.templates.factories import etl
from pytest_orchestrator.templates.factories import fan_out
from pytest_orchestrator.templates.factories import retry_until


__all__ = ["CI_STAGES", "ci_pipeline", "etl", "fan_out", "retry_until"]
