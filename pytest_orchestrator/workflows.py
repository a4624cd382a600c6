"""The original module's name for :mod:`pytest_orchestrator.templates`."""

from __future__ import annotations

from pytest_orchestrator.templates import CI_STAGES as CI_STAGES
from pytest_orchestrator.templates import ci_pipeline as ci_pipeline
from pytest_orchestrator.templates import etl as etl
from pytest_orchestrator.templates import fan_out as fan_out
from pytest_orchestrator.templates import retry_until as retry_until


__all__ = ["CI_STAGES", "ci_pipeline", "etl", "fan_out", "retry_until"]
