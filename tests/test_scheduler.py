"""``DagScheduler``: which nodes are ready, in what order, and which the rules skip or cancel."""

from __future__ import annotations

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from pytest_orchestrator.core.scheduler import CANCELLED
from pytest_orchestrator.core.scheduler import COMPLETED
from pytest_orchestrator.core.scheduler import FAILED
from pytest_orchestrator.core.scheduler import SKIPPED
from pytest_orchestrator.core.scheduler import TRIGGER_RULES
from pytest_orchestrator.core.scheduler import DagScheduler


def test_trigger_rules() -> None:
    assert set(TRIGGER_RULES) == {"all_success", "all_done", "one_failed"}


def test_roots_are_ready_first_and_dependents_follow_done() -> None:
    sched = DagScheduler({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]})
    assert sched.is_active()
    assert sched.get_ready() == ["a"]
    assert sched.get_ready() == []  # taken nodes are not handed out twice
    assert sched.done("a", COMPLETED) == []
    assert sched.get_ready() == ["b", "c"]
    sched.done("b", COMPLETED)
    assert not sched.has_ready()  # d still waits for c
    sched.done("c", COMPLETED)
    assert sched.get_ready() == ["d"]
    assert sched.is_active()
    sched.done("d", COMPLETED)
    assert not sched.is_active()
    assert all(sched.is_finished(n) for n in "abcd")


def test_get_ready_limit() -> None:
    sched = DagScheduler({"a": [], "b": [], "c": []})
    assert sched.get_ready(2) == ["a", "b"]
    assert sched.has_ready()
    assert sched.get_ready(5) == ["c"]
    assert not sched.has_ready()


def test_ready_order_priority_then_remaining_path_then_definition() -> None:
    """Higher priority first; then the node with the most work behind it; then definition order."""
    graph = {"short1": [], "long": [], "long2": ["long"], "short2": [], "vip": []}
    sched = DagScheduler(graph, priorities={"vip": 3})
    assert sched.get_ready() == ["vip", "long", "short1", "short2"]


def test_ready_order_uses_weights() -> None:
    """Known durations decide the remaining path: one long task beats a chain of short ones."""
    graph = {"chain1": [], "chain2": ["chain1"], "big": []}
    sched = DagScheduler(graph, weights={"chain1": 1.0, "chain2": 1.0, "big": 10.0})
    assert sched.get_ready() == ["big", "chain1"]
    assert sched.remaining_path == {"chain1": 2.0, "chain2": 1.0, "big": 10.0}
    sched = DagScheduler(graph, weights={"chain1": 1.0, "chain2": 1.0, "big": 1.5})
    assert sched.get_ready() == ["chain1", "big"]


def test_negative_priority_goes_last() -> None:
    sched = DagScheduler({"a": [], "b": [], "c": []}, priorities={"a": -1, "c": 1})
    assert sched.get_ready() == ["c", "b", "a"]


def test_failed_dependency_skips_dependents_with_reason() -> None:
    sched = DagScheduler({"a": [], "b": ["a"], "c": ["b"], "d": []})
    sched.get_ready()
    skipped = sched.done("a", FAILED)
    assert skipped == [("b", "dependency 'a' failed"), ("c", "dependency 'b' was skipped (root cause: 'a' failed)")]
    assert sched.state["b"] == SKIPPED
    assert sched.reasons["c"] == skipped[1][1]
    assert sched.root_cause == {"b": ("a", FAILED), "c": ("a", FAILED)}
    assert sched.is_active()  # d still runs
    sched.done("d", COMPLETED)
    assert not sched.is_active()


def test_skip_reason_names_the_first_unfinished_dependency_in_declaration_order() -> None:
    sched = DagScheduler({"x": [], "y": [], "z": ["y", "x"]})
    sched.get_ready()
    sched.done("x", FAILED)
    skipped = sched.done("y", SKIPPED, "condition")
    assert skipped == [("z", "dependency 'y' was skipped")]
    assert sched.root_cause["z"] == ("y", SKIPPED)


def test_skip_of_a_condition_skipped_chain_names_the_root() -> None:
    sched = DagScheduler({"a": [], "b": ["a"], "c": ["b"], "d": ["c"]})
    sched.get_ready()
    skipped = dict(sched.done("a", SKIPPED, "condition"))
    assert skipped["b"] == "dependency 'a' was skipped"
    assert skipped["d"] == "dependency 'c' was skipped (root cause: 'a' was skipped)"
    assert sched.reasons["a"] == "condition"


def test_cancelled_dependency_skips_dependents() -> None:
    sched = DagScheduler({"a": [], "b": ["a"]})
    sched.get_ready()
    assert sched.done("a", CANCELLED) == [("b", "dependency 'a' was cancelled")]


def test_all_done_runs_after_any_outcome() -> None:
    for outcome in (COMPLETED, FAILED, SKIPPED, CANCELLED):
        sched = DagScheduler({"a": [], "b": [], "cleanup": ["a", "b"]}, trigger_rules={"cleanup": "all_done"})
        sched.get_ready()
        assert sched.done("a", outcome) == []
        assert not sched.has_ready()  # still waits for b
        assert sched.done("b", COMPLETED) == []
        assert sched.get_ready() == ["cleanup"]


def test_one_failed_runs_only_when_a_dependency_failed() -> None:
    rules = {"alert": "one_failed"}
    sched = DagScheduler({"a": [], "b": [], "alert": ["a", "b"]}, trigger_rules=rules)
    sched.get_ready()
    sched.done("a", COMPLETED)
    sched.done("b", FAILED)
    assert sched.get_ready() == ["alert"]

    sched = DagScheduler({"a": [], "b": [], "alert": ["a", "b"]}, trigger_rules=rules)
    sched.get_ready()
    sched.done("a", COMPLETED)
    skipped = sched.done("b", SKIPPED)
    assert [n for n, _ in skipped] == ["alert"]
    assert "one_failed" in skipped[0][1]
    assert not sched.is_active()


def test_a_skipped_one_failed_node_skips_its_all_success_dependents() -> None:
    sched = DagScheduler({"a": [], "alert": ["a"], "after": ["alert"]}, trigger_rules={"alert": "one_failed"})
    sched.get_ready()
    skipped = dict(sched.done("a", COMPLETED))
    assert set(skipped) == {"alert", "after"}
    assert skipped["after"].startswith("dependency 'alert' was skipped")


def test_cancel_pending_spares_cleanup() -> None:
    """Waiting and ready nodes are cancelled, running ones are left to the caller, cleanup rules are spared."""
    graph = {"a": [], "b": [], "c": ["a"], "cleanup": ["a", "c"], "alert": ["a"], "ready": []}
    rules = {"cleanup": "all_done", "alert": "one_failed"}
    sched = DagScheduler(graph, trigger_rules=rules)
    assert sched.get_ready(2) == ["a", "b"]
    cancelled, skipped = sched.cancel_pending("stop")
    assert sorted(cancelled) == ["c", "ready"]
    assert skipped == []
    assert sched.reasons["c"] == "stop"
    assert sched.state["a"] == "running"  # left to the caller
    assert sched.state["cleanup"] == "waiting"
    sched.done("a", FAILED)
    assert sched.get_ready() == ["cleanup", "alert"]
    sched.done("b", CANCELLED)
    sched.done("cleanup", COMPLETED)
    sched.done("alert", COMPLETED)
    assert not sched.is_active()


def test_cancel_pending_skips_spared_nodes_whose_rule_now_says_skip() -> None:
    sched = DagScheduler({"a": [], "alert": ["a"]}, trigger_rules={"alert": "one_failed"})
    # a is ready (not running), so it is cancelled; alert's only dependency then did not fail
    cancelled, skipped = sched.cancel_pending("stop")
    assert cancelled == ["a"]
    assert [n for n, _ in skipped] == ["alert"]
    assert not sched.is_active()


def test_cancel_pending_with_keep() -> None:
    sched = DagScheduler({"a": [], "b": ["a"], "cleanup": ["a"]}, trigger_rules={"cleanup": "all_done"})
    cancelled, skipped = sched.cancel_pending("stop everything", keep=lambda n: False)
    assert sorted(cancelled) == ["a", "b", "cleanup"]
    assert skipped == []
    assert not sched.is_active()


def test_done_on_a_node_that_never_started() -> None:
    """A caller may finish a waiting or ready node (a marker skip); its dependents follow the rules."""
    sched = DagScheduler({"a": [], "b": ["a"], "c": ["b"]})
    assert sched.done("b", SKIPPED, "marker") == [("c", "dependency 'b' was skipped")]
    assert sched.done("a", COMPLETED) == []
    assert not sched.is_active()


def test_misuse_raises_value_error() -> None:
    sched = DagScheduler({"a": [], "b": ["a"]})
    with pytest.raises(ValueError, match="unknown outcome"):
        sched.done("a", "exploded")
    sched.done("a", COMPLETED)
    with pytest.raises(ValueError, match="already finished"):
        sched.done("a", FAILED)


def test_unknown_outcome_message_lists_the_finished_states() -> None:
    with pytest.raises(ValueError) as info:
        DagScheduler({"a": []}).done("a", "passed")
    assert (
        str(info.value) == "unknown outcome 'passed'; expected one of ['cancelled', 'completed', 'failed', 'skipped']"
    )


def test_outcomes_are_the_task_statuses() -> None:
    """One definition of "finished": the scheduler's string outcomes are ``TaskStatus`` values."""
    from pytest_orchestrator.core.workflow import FINISHED
    from pytest_orchestrator.core.workflow import TaskStatus

    assert {COMPLETED, FAILED, SKIPPED, CANCELLED} == FINISHED
    assert {s for s in TaskStatus if s.finished} == FINISHED
    sched = DagScheduler({"a": [], "b": ["a"]})
    sched.done("a", TaskStatus.COMPLETED)
    assert sched.is_finished("a")
    assert sched.get_ready() == ["b"]


def test_done_on_a_ready_node_takes_it_out_of_the_queue() -> None:
    sched = DagScheduler({"a": [], "b": [], "c": []})
    sched.done("b", SKIPPED, "marker")
    assert sched.get_ready() == ["a", "c"]


def test_duplicate_dependencies_count_once() -> None:
    sched = DagScheduler({"a": [], "b": ["a", "a"]})
    sched.get_ready()
    sched.done("a", COMPLETED)
    assert sched.get_ready() == ["b"]


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_driving_to_the_end_respects_the_rules(data: st.DataObject) -> None:
    """Random DAG, random outcomes: every node finishes exactly once, no node is handed out before all its
    dependencies finished, and the rules' verdict matches the dependencies' outcomes."""
    n = data.draw(st.integers(1, 12))
    graph = {j: sorted(data.draw(st.sets(st.integers(0, j - 1), max_size=3)) if j else []) for j in range(n)}
    rules = {j: data.draw(st.sampled_from(TRIGGER_RULES)) for j in range(n)}
    sched = DagScheduler(graph, trigger_rules=rules)
    outcome: dict[int, str] = {}
    handed_out: list[int] = []
    while sched.is_active():
        ready = sched.get_ready()
        assert ready, "an active scheduler with nothing running must have something ready"
        for node in ready:
            assert all(d in outcome for d in graph[node])
            deps = [outcome[d] for d in graph[node]]
            if rules[node] == "all_success":
                assert all(o == COMPLETED for o in deps)
            elif rules[node] == "one_failed" and deps:  # a root runs whatever its rule (as in Airflow)
                assert FAILED in deps
            handed_out.append(node)
        for node in ready:
            result = data.draw(st.sampled_from([COMPLETED, FAILED]))
            outcome[node] = result
            for skipped, reason in sched.done(node, result):
                assert skipped not in outcome
                assert all(d in outcome for d in graph[skipped]), "skipped only once its dependencies finished"
                deps = [outcome[d] for d in graph[skipped]]
                assert rules[skipped] != "all_done"
                if rules[skipped] == "all_success":
                    assert any(o != COMPLETED for o in deps)
                    assert reason.startswith("dependency ")
                else:
                    assert FAILED not in deps
                outcome[skipped] = SKIPPED
    assert sorted(outcome) == list(range(n))
    assert len(handed_out) == len(set(handed_out))
    assert all(sched.state[node] == outcome[node] for node in graph)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), strategy=st.sampled_from(["critical_path", "priority", "fifo"]))
def test_nodes_finished_while_ready_never_come_out_of_the_queue(data: st.DataObject, strategy: str) -> None:
    """A caller may finish a ready node without taking it (the pytest plugin runs items in pytest's order) or
    cancel what waits: such a node is never handed out afterwards, nothing is handed out twice, and ``has_ready``
    says exactly whether a ready node is left."""
    n = data.draw(st.integers(1, 15))
    graph = {j: sorted(data.draw(st.sets(st.integers(0, j - 1), max_size=3)) if j else []) for j in range(n)}
    sched = DagScheduler(graph, strategy=strategy)
    handed_out: list[int] = []
    running: set[int] = set()
    for _ in range(4 * n):
        if not sched.is_active():
            break
        ready_now = [node for node in graph if sched.state[node] == "ready"]
        assert sched.has_ready() == bool(ready_now)
        action = data.draw(st.sampled_from(["take", "finish_ready", "finish_running", "cancel"]))
        if action == "take":
            taken = sched.get_ready(data.draw(st.none() | st.integers(1, 3)))
            assert set(taken) <= set(ready_now) and len(taken) == len(set(taken))
            assert not set(taken) & set(handed_out)
            handed_out += taken
            running.update(taken)
        elif action == "finish_ready" and ready_now:
            sched.done(data.draw(st.sampled_from(ready_now)), data.draw(st.sampled_from([COMPLETED, FAILED])))
        elif action == "finish_running" and running:
            node = data.draw(st.sampled_from(sorted(running)))
            running.discard(node)
            sched.done(node, data.draw(st.sampled_from([COMPLETED, FAILED])))
        elif action == "cancel" and data.draw(st.booleans()):
            cancelled, _ = sched.cancel_pending("stop", keep=lambda node: False)
            assert not set(cancelled) & set(handed_out)
    while sched.has_ready():
        taken = sched.get_ready()
        assert taken and all(sched.state[node] == "running" for node in taken)
        assert not set(taken) & set(handed_out)
        handed_out += taken
    assert not any(sched.state[node] == "ready" for node in graph)
