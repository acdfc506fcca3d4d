"""Validation of BPMN documents before deployment: XML, SpiffWorkflow parsing, project rules.

Each problem names the line and, when known, the element id, so that the designer and the
``motcua validate`` command can point at it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lxml import etree

from engine import workflow
from engine.evaluator import EvaluationError, RestrictedEvaluator

BPMN = workflow.BPMN_NS
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN, "spiffworkflow": SPIFF}
# The same process functions the engine's script engine offers (engine.workflow).
_evaluator = RestrictedEvaluator(functions={"working_days_from_now": workflow.working_days_from_now})


@dataclass(frozen=True)
class Problem:
    line: int | None
    element: str | None
    message: str


def _element_id(node: etree._Element) -> str | None:
    while node is not None:
        if node.get("id"):
            return node.get("id")
        node = node.getparent()
    return None


def _expressions(root: etree._Element) -> list[tuple[etree._Element, str, str]]:
    """(node, kind, source) for every expression or script the engine will evaluate."""
    found: list[tuple[etree._Element, str, str]] = []
    for node in root.iterfind(".//bpmn:conditionExpression", NS):
        found.append((node, "expression", node.text or ""))
    for tag in ("timeDate", "timeDuration", "timeCycle"):
        for node in root.iterfind(f".//bpmn:{tag}", NS):
            found.append((node, "expression", node.text or ""))
    for node in root.iterfind(".//bpmn:script", NS):
        found.append((node, "script", node.text or ""))
    for tag in ("preScript", "postScript"):
        for node in root.iterfind(f".//spiffworkflow:{tag}", NS):
            found.append((node, "script", node.text or ""))
    for node in root.iterfind(".//spiffworkflow:parameter", NS):
        found.append((node, "expression", node.get("value") or ""))
    return found


DEADLINE_KINDS = {"same_day": False, "working_days": True, "working_hours": True, "calendar_days": True}


def _deadline_problem(value: str) -> str | None:
    kind, _, amount = value.partition(":")
    if kind not in DEADLINE_KINDS:
        return f"unknown deadline {value!r} (same_day, working_days:N, working_hours:H, calendar_days:N)"
    if DEADLINE_KINDS[kind]:
        try:
            if float(amount) <= 0:
                return f"deadline {value!r} must be positive"
        except ValueError:
            return f"deadline {value!r} needs a number"
    return None


def _properties(task: etree._Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in task.iterfind(".//spiffworkflow:property", NS)}


def validate_bpmn(
    bpmn_xml: str,
    *,
    filename: str = "<bpmn>",
    library: Sequence[str] = (),
    lane_roles: Mapping[str, str] | None = None,
    task_forms: Mapping[str, Any] | None = None,
    process_id: str | None = None,
    require_called: bool = True,
) -> list[Problem]:
    """All problems found; an empty list means the model can be deployed.

    Rules: the XML parses; expressions and scripts pass the restricted evaluator; every lane maps
    to a role; every user task is in a lane, has a form (present in ``task_forms`` when given) and
    a deadline property; SpiffWorkflow parses the model with its lifecycle ``library``.
    """
    try:
        root = etree.fromstring(bpmn_xml.encode("utf-8"))  # noqa: S320 - no DTD/entity resolution
    except etree.XMLSyntaxError as exc:
        return [Problem(exc.lineno, None, f"XML syntax error: {exc.msg}")]
    problems: list[Problem] = []
    if root.tag != f"{{{BPMN}}}definitions":
        return [Problem(root.sourceline, None, "root element must be bpmn:definitions")]
    for node, kind, source in _expressions(root):
        element = _element_id(node)
        if not source.strip():
            problems.append(Problem(node.sourceline, element, f"{element}: empty {kind}"))
            continue
        try:
            if kind == "script":
                _evaluator.validate_script(source)
            else:
                _evaluator.validate_expression(source.strip())
        except EvaluationError as exc:
            offset = (exc.line - 1) if kind == "script" and exc.line else 0
            line = (node.sourceline or 0) + offset
            problems.append(Problem(line, element, f"{element}: {exc}"))
    roles = lane_roles if lane_roles is not None else {}
    for lane in root.iterfind(".//bpmn:lane", NS):
        if lane.get("name") not in roles:
            problems.append(Problem(lane.sourceline, lane.get("id"),
                                    f"{lane.get('id')}: lane {lane.get('name')!r} maps to no role"))
    refs = {ref.text for ref in root.iterfind(".//bpmn:lane/bpmn:flowNodeRef", NS)}
    for task in root.iterfind(".//bpmn:userTask", NS):
        task_id = task.get("id")
        # A task inside a subprocess takes the lane of the subprocess that contains it.
        ids = {node.get("id") for node in task.iterancestors() if node.tag == f"{{{BPMN}}}subProcess"}
        found: list[str] = []
        if not ({task_id} | ids) & refs:
            found.append("user task is in no lane (a lane gives its role)")
        props = _properties(task)
        form = props.get("form")
        if not form:
            found.append("user task has no form (property 'form')")
        elif task_forms is not None and form not in task_forms:
            found.append(f"form {form!r} is not in the procedure's task_forms")
        deadline = props.get("deadline")
        if not deadline:
            found.append("user task has no deadline (property 'deadline')")
        elif (problem := _deadline_problem(deadline)) is not None:
            found.append(problem)
        problems.extend(Problem(task.sourceline, task_id, f"{task_id}: {message}") for message in found)
    if problems:
        return problems
    try:
        workflow.parse_model(bpmn_xml, filename=filename, library=library, process_id=process_id,
                             require_called=require_called)
    except workflow.ProcessModelError as exc:
        for line, element, message in exc.errors:
            if line is None and element:
                nodes = root.xpath("//*[@id=$id]", id=element)
                line = nodes[0].sourceline if nodes else None
            problems.append(Problem(line, element, message))
    return problems
