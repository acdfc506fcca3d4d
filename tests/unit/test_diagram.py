"""Diagram layout for models written without DI: every flow node and flow of every process in the
library gets a shape or an edge, inside event subprocesses the steps map to the subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from engine.diagram import BPMN, BPMNDI, with_layout

PROCESSES = Path(__file__).resolve().parents[2] / "processes"
DOCUMENTS = sorted(PROCESSES.glob("*/*.bpmn"))


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_top_level_node_and_flow_is_drawn(path):
    document = with_layout(path.read_text(encoding="utf-8"))
    root = etree.fromstring(document.xml.encode())
    drawn = {e.get("bpmnElement") for e in root.iter(f"{{{BPMNDI}}}BPMNShape", f"{{{BPMNDI}}}BPMNEdge")}
    for process in root.iter(f"{{{BPMN}}}process"):
        for child in process:
            if not isinstance(child.tag, str):
                continue  # comments
            name = etree.QName(child).localname
            if name in ("laneSet", "extensionElements", "documentation"):
                continue
            assert child.get("id") in drawn, f"{path.name}: {child.get('id')} ({name}) has no shape"
        assert f"diagram_{process.get('id')}" in {v.diagram_id for v in document.views}


def test_steps_inside_an_event_subprocess_are_shown_on_it():
    document = with_layout((PROCESSES / "_lifecycle" / "onestop.bpmn").read_text(encoding="utf-8"))
    case = next(v for v in document.views if v.process_id == "onestop_case")
    inner = [k for k, v in case.shown_as.items() if v == "apology" and k != "apology"]
    assert inner, "the apology subprocess has steps"
    assert case.shown_as["intake"] == "intake"


def test_a_document_with_di_is_left_as_it_is():
    xml = ('<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
           'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" id="d"><bpmn:process id="p">'
           '<bpmn:startEvent id="s"/></bpmn:process><bpmndi:BPMNDiagram id="mine">'
           '<bpmndi:BPMNPlane id="pl" bpmnElement="p"/></bpmndi:BPMNDiagram></bpmn:definitions>')
    document = with_layout(xml)
    assert [v.diagram_id for v in document.views] == ["mine"]
    assert document.xml.count("BPMNDiagram ") == 1
