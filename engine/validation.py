"""Validation of BPMN documents before deployment: XML, SpiffWorkflow parsing, project rules.

Each problem names the line and, when known, the element id, so that the designer and the
``motcua validate`` command can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from engine import workflow
from engine.evaluator import EvaluationError, RestrictedEvaluator

BPMN = workflow.BPMN_NS
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN, "spiffworkflow": SPIFF}
_evaluator = RestrictedEvaluator()


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


def validate_bpmn(bpmn_xml: str, *, filename: str = "<bpmn>") -> list[Problem]:
    """All problems found; an empty list means the model can be deployed."""
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
    for task in root.iterfind(".//bpmn:userTask", NS):
        process = task.getparent()
        lanes = process.findall(".//bpmn:lane", NS) if process is not None else []
        refs = {ref.text for lane in lanes for ref in lane.iterfind("bpmn:flowNodeRef", NS)}
        if task.get("id") not in refs:
            problems.append(Problem(task.sourceline, task.get("id"),
                                    f"{task.get('id')}: user task is in no lane (a lane gives its role)"))
    if problems:
        return problems
    try:
        workflow.parse_model(bpmn_xml, filename=filename)
    except workflow.ProcessModelError as exc:
        for line, element, message in exc.errors:
            if line is None and element:
                found = root.xpath("//*[@id=$id]", id=element)
                line = found[0].sourceline if found else None
            problems.append(Problem(line, element, message))
    return problems
