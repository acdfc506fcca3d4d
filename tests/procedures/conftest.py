"""Flow coverage of the procedure library: which BPMN sequence flows the procedure tests took.

Every engine step reports its workflow (``services.STEP_OBSERVERS``) before history compaction;
each live or finished task and its nearest BPMN ancestor form a taken (source, target) pair. At
the end of the run the pairs are matched with the sequence flows of processes/ and the figure is
written to test-artifacts/flow-coverage.json. When the whole procedure suite ran, less than
MIN_COVERAGE fails the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from SpiffWorkflow.util.task import TaskState

from engine import services

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ROOT / "processes"
REPORT = ROOT / "test-artifacts" / "flow-coverage.json"
MIN_COVERAGE = 0.95
BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
_TAKEN: set[tuple[str, str, str, str]] = set()  # (procedure code, process id, source, target)
_LIVE = TaskState.COMPLETED | TaskState.READY | TaskState.WAITING | TaskState.STARTED


def _bpmn_parent(task: Any) -> Any:
    parent = task.parent
    while parent is not None and not parent.task_spec.bpmn_id:
        parent = parent.parent
    return parent


def _observe(dossier: Any, wf: Any) -> None:
    code = dossier.procedure.code
    for workflow in (wf, *wf.subprocesses.values()):
        process = workflow.spec.name
        for task in workflow.get_tasks(state=_LIVE):
            if not task.task_spec.bpmn_id:
                continue
            parent = _bpmn_parent(task)
            if parent is not None:
                _TAKEN.add((code, process, parent.task_spec.bpmn_id, task.task_spec.bpmn_id))


@pytest.fixture(autouse=True, scope="session")
def _flow_observer() -> Iterator[None]:
    services.STEP_OBSERVERS.append(_observe)
    yield
    services.STEP_OBSERVERS.remove(_observe)


def _flows() -> dict[str, list[tuple[str, str, str, str]]]:
    """Per BPMN file: (process id, flow id, source, target) of every sequence flow."""
    result: dict[str, list[tuple[str, str, str, str]]] = {}
    for path in sorted(PROCESSES.glob("*/*.bpmn")):
        root = etree.parse(str(path)).getroot()  # noqa: S320 - our own files
        flows = []
        for process in root.iter(f"{BPMN}process"):
            for flow in process.iter(f"{BPMN}sequenceFlow"):
                # flows inside an embedded (event) subprocess belong to that subprocess's spec
                owner = flow.getparent()
                spec = owner.get("id") if owner.tag == f"{BPMN}subProcess" else process.get("id")
                flows.append((spec, flow.get("id"), flow.get("sourceRef"), flow.get("targetRef")))
        result[str(path.relative_to(ROOT))] = flows
    return result


def _taken(procedure: str, spec: str, source: str, target: str) -> bool:
    """Lifecycle flows count for any procedure; a procedure's flows only for its own dossiers."""
    return any(
        (procedure in ("*", code)) and p == spec and s == source and t == target for code, p, s, t in _TAKEN
    )


def coverage_report() -> dict[str, Any]:
    files = {}
    total = taken = 0
    for name, flows in _flows().items():
        procedure = "*" if "/_lifecycle/" in name else Path(name).parent.name
        missing = [f"{flow_id} ({src} → {tgt})" for spec, flow_id, src, tgt in flows
                   if not _taken(procedure, spec, src, tgt)]
        files[name] = {"flows": len(flows), "taken": len(flows) - len(missing), "missing": missing}
        total += len(flows)
        taken += len(flows) - len(missing)
    return {"flows": total, "taken": taken, "coverage": round(taken / total, 4) if total else 1.0, "files": files}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _TAKEN:
        return
    report = coverage_report()
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    session.config._motcua_flow_report = report  # type: ignore[attr-defined]
    # Enforced only when every procedure test ran (not for a single file or a -k selection).
    every_file = {p.name for p in Path(__file__).parent.glob("test_*.py")}
    whole_suite = every_file == _COLLECTED and not session.config.option.keyword \
        and not session.config.option.markexpr
    if whole_suite and exitstatus == 0 and report["coverage"] < MIN_COVERAGE:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_COLLECTED: set[str] = set()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    _COLLECTED.update(item.path.name for item in items if item.path.parent == here)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    report = getattr(config, "_motcua_flow_report", None)
    if report is None:
        return
    terminalreporter.write_line(
        f"procedure flow coverage: {report['taken']}/{report['flows']} sequence flows "
        f"({report['coverage']:.1%}); details in {REPORT.relative_to(ROOT)}"
    )
    if report["coverage"] < MIN_COVERAGE:
        terminalreporter.write_line(f"procedure flow coverage is below {MIN_COVERAGE:.0%}: the full run fails")
    for name, item in report["files"].items():
        if item["missing"]:
            terminalreporter.write_line(f"  {name}: not taken: {', '.join(item['missing'])}")
