import asyncio

from pytest_orchestrator import RetryPolicy
from pytest_orchestrator import Workflow


def fetch_data():
    return {"users": 150}


def transform(data):
    return {k: v * 2 for k, v in data.items()}


def report(result):
    print(f"Report: {result}")


wf = Workflow(name="etl-pipeline", fail_fast=True)
wf.add_task("fetch", action=fetch_data)
wf.add_task("transform", action=transform, dependencies=["fetch"], retry_policy=RetryPolicy(max_attempts=3))
wf.add_task("report", action=report, dependencies=["transform"])

results = asyncio.run(wf.run())
print(wf.get_summary())
