"""Validation of BPMN documents before deployment: XML, SpiffWorkflow parsing, project rules.

Each problem names the line and, when known, the element id, so that the designer and the
``motcua validate`` command can point at it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import SpiffWorkflow.bpmn.parser
from lxml import etree

from engine import workflow
from engine.evaluator import EvaluationError, RestrictedEvaluator

BPMN = workflow.BPMN_NS
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN, "spiffworkflow": SPIFF}
# The same process functions the engine's script engine offers (engine.workflow).
_evaluator = RestrictedEvaluator(functions={"working_days_from_now": workflow.working_days_from_now})


# A loop marker's loopMaximum must be given and at most this: each pass deepens the task tree.
MAX_LOOP = 100
# Element kinds where a case waits for a person or the outside world: a cycle of sequence flows
# through one of them advances only when someone acts, so it cannot spin inside an engine step.
WAIT_STATES = frozenset({"userTask", "manualTask", "receiveTask", "intermediateCatchEvent"})
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Problem:
    line: int | None
    element: str | None
    message: str
    # Which rule: xml, schema, expression, lane, form, deadline, operation, message, loop, engine.
    rule: str = "engine"

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "element": self.element, "message": self.message, "rule": self.rule}


@dataclass(frozen=True)
class OperationInfo:
    """A connector operation as the designer and the validator see it."""

    name: str
    description: str = ""
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


@functools.cache
def bpmn_schema() -> etree.XMLSchema:
    """The OMG BPMN 2.0 XSD (BPMN20.xsd with Semantic, BPMNDI, DC, DI) shipped with SpiffWorkflow."""
    folder = Path(SpiffWorkflow.bpmn.parser.__file__).resolve().parent / "schema"
    return etree.XMLSchema(etree.parse(str(folder / "BPMN20.xsd")))  # noqa: S320 - a local, trusted file


def _schema_problems(root: etree._Element) -> list[Problem]:
    schema = bpmn_schema()
    if schema.validate(etree.ElementTree(root)):
        return []
    by_line: dict[int, str] = {}
    for node in root.iter():
        if isinstance(node.tag, str) and node.get("id") and node.sourceline not in by_line:
            by_line[node.sourceline] = node.get("id")
    problems = []
    for error in schema.error_log:
        message = re.sub(r"\{http://www\.omg\.org/spec/BPMN/20100524/MODEL\}", "bpmn:", error.message)
        problems.append(Problem(error.line, by_line.get(error.line), f"BPMN 2.0 schema: {message}", "schema"))
    return problems


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


def deadline_problem(value: str) -> str | None:
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
    operations: Mapping[str, OperationInfo] | None = None,
) -> list[Problem]:
    """All problems found; an empty list means the model can be deployed.

    Rules: the XML parses and follows the BPMN 2.0 XSD; expressions and scripts pass the
    restricted evaluator; every lane maps to a role; every user task is in a lane, has a form
    (present in ``task_forms`` when given) and a deadline property; service tasks name a connector
    operation (one of ``operations`` when given, with its required parameters); message events
    name a defined message; loops are bounded; SpiffWorkflow parses the model with its lifecycle
    ``library``.
    """
    try:
        root = etree.fromstring(bpmn_xml.encode("utf-8"))  # noqa: S320 - no DTD/entity resolution
    except etree.XMLSyntaxError as exc:
        return [Problem(exc.lineno, None, f"XML syntax error: {exc.msg}", "xml")]
    problems: list[Problem] = []
    if root.tag != f"{{{BPMN}}}definitions":
        return [Problem(root.sourceline, None, "root element must be bpmn:definitions", "schema")]
    problems.extend(_schema_problems(root))
    for node, kind, source in _expressions(root):
        element = _element_id(node)
        if not source.strip():
            problems.append(Problem(node.sourceline, element, f"{element}: empty {kind}", "expression"))
            continue
        try:
            if kind == "script":
                _evaluator.validate_script(source)
            else:
                _evaluator.validate_expression(source.strip())
        except EvaluationError as exc:
            offset = (exc.line - 1) if kind == "script" and exc.line else 0
            line = (node.sourceline or 0) + offset
            problems.append(Problem(line, element, f"{element}: {exc}", "expression"))
    roles = lane_roles if lane_roles is not None else {}
    for lane in root.iterfind(".//bpmn:lane", NS):
        if lane.get("name") not in roles:
            problems.append(Problem(lane.sourceline, lane.get("id"),
                                    f"{lane.get('id')}: lane {lane.get('name')!r} maps to no role", "lane"))
    refs = {ref.text for ref in root.iterfind(".//bpmn:lane/bpmn:flowNodeRef", NS)}
    for task in root.iterfind(".//bpmn:userTask", NS):
        task_id = task.get("id")
        # A task inside a subprocess takes the lane of the subprocess that contains it.
        ids = {node.get("id") for node in task.iterancestors() if node.tag == f"{{{BPMN}}}subProcess"}
        found: list[tuple[str, str]] = []
        if not ({task_id} | ids) & refs:
            found.append(("lane", "user task is in no lane (a lane gives its role)"))
        props = _properties(task)
        form = props.get("form")
        if not form:
            found.append(("form", "user task has no form (property 'form')"))
        elif task_forms is not None and form not in task_forms:
            found.append(("form", f"form {form!r} is not in the procedure's task_forms"))
        deadline = props.get("deadline")
        if not deadline:
            found.append(("deadline", "user task has no deadline (property 'deadline')"))
        elif (problem := deadline_problem(deadline)) is not None:
            found.append(("deadline", problem))
        variable = props.get("deadline_variable")
        if variable is not None and not IDENTIFIER.match(variable):
            found.append(("deadline", f"deadline_variable {variable!r} is not a process variable name"))
        problems.extend(Problem(task.sourceline, task_id, f"{task_id}: {message}", rule) for rule, message in found)
    problems.extend(_operation_problems(root, operations))
    problems.extend(_message_problems(root))
    problems.extend(_loop_problems(root))
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
            problems.append(Problem(line, element, message, "engine"))
    return problems


def _operation_problems(root: etree._Element, operations: Mapping[str, OperationInfo] | None) -> list[Problem]:
    problems = []
    for task in root.iterfind(".//bpmn:serviceTask", NS):
        task_id = task.get("id")
        operator = task.find(".//spiffworkflow:serviceTaskOperator", NS)
        if operator is None or not operator.get("id"):
            problems.append(Problem(task.sourceline, task_id, f"{task_id}: service task names no connector operation "
                                    "(spiffworkflow:serviceTaskOperator)", "operation"))
            continue
        name = operator.get("id")
        if operations is None:
            continue
        info = operations.get(name)
        if info is None:
            problems.append(Problem(operator.sourceline, task_id,
                                    f"{task_id}: unknown connector operation {name!r}", "operation"))
            continue
        given = {p.get("id") for p in operator.iterfind(".//spiffworkflow:parameter", NS)}
        for missing in (p for p in info.required if p not in given):
            problems.append(Problem(operator.sourceline, task_id,
                                    f"{task_id}: operation {name!r} needs the parameter {missing!r}", "operation"))
        if "*" in info.optional:
            continue
        for unknown in sorted(given - set(info.required) - set(info.optional)):
            problems.append(Problem(operator.sourceline, task_id,
                                    f"{task_id}: operation {name!r} takes no parameter {unknown!r}", "operation"))
    return problems


def _message_problems(root: etree._Element) -> list[Problem]:
    messages = {m.get("id"): m.get("name") for m in root.iterfind("bpmn:message", NS)}
    problems = []
    for node in root.iter(f"{{{BPMN}}}messageEventDefinition", f"{{{BPMN}}}receiveTask", f"{{{BPMN}}}sendTask"):
        element = _element_id(node)
        ref = node.get("messageRef")
        if not ref:
            problems.append(Problem(node.sourceline, element, f"{element}: names no message (messageRef)", "message"))
        elif not messages.get(ref):
            problems.append(Problem(node.sourceline, element,
                                    f"{element}: message {ref!r} is not defined with a name", "message"))
    return problems


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _loop_problems(root: etree._Element) -> list[Problem]:
    """Loops must end: a loop marker has a loopMaximum of at most MAX_LOOP; a cycle of sequence
    flows passes through a wait state (a person or the outside world acts on every pass)."""
    problems = []
    for marker in root.iterfind(".//bpmn:standardLoopCharacteristics", NS):
        element = _element_id(marker)
        maximum = marker.get("loopMaximum")
        if maximum is None or not maximum.isdigit() or not 0 < int(maximum) <= MAX_LOOP:
            problems.append(Problem(marker.sourceline, element,
                                    f"{element}: a loop needs loopMaximum between 1 and {MAX_LOOP}", "loop"))
    for container in root.iter(f"{{{BPMN}}}process", f"{{{BPMN}}}subProcess"):
        nodes = {child.get("id"): child for child in container if child.get("id")}
        edges: dict[str, list[str]] = {}
        for flow in container.iterfind("bpmn:sequenceFlow", NS):
            edges.setdefault(flow.get("sourceRef", ""), []).append(flow.get("targetRef", ""))
        for cycle in _cycles(edges):
            if not any(_local(nodes[n].tag) in WAIT_STATES for n in cycle if n in nodes):
                first = nodes.get(cycle[0])
                problems.append(Problem(first.sourceline if first is not None else None, cycle[0],
                                        f"{cycle[0]}: the loop {' → '.join(cycle)} has no user task or catch "
                                        "event, so nothing bounds it", "loop"))
    return problems


def _cycles(edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one node or a self-loop
    (Tarjan), each as the component's nodes in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for start in sorted(edges):
        if start not in index:
            visit(start)
    return found
