"""Diagram layout for BPMN documents written without diagram interchange (DI).

The procedure library is written by hand as process XML only; bpmn-js needs BPMNShape/BPMNEdge
coordinates to draw it. For each process this lays the flow out left to right (a column per step
along the longest path from a start event, a row per lane, loops drawn back), and draws event
subprocesses collapsed under the main flow. Documents that already carry DI are left alone.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from lxml import etree

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"

COLUMN = 150
ROW = 110
MARGIN = 40
SIZES = {"task": (100, 80), "event": (36, 36), "gateway": (50, 50)}
NOT_NODES = {"sequenceFlow", "laneSet", "lane", "flowNodeRef", "extensionElements", "documentation",
             "textAnnotation", "association", "dataObject", "dataObjectReference", "ioSpecification"}


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _kind(name: str) -> str:
    if name.endswith("Event"):
        return "event"
    if name.endswith("Gateway"):
        return "gateway"
    return "task"


@dataclass
class ProcessView:
    """One process of a document, drawable on its own: ``diagram_id`` is passed to bpmn-js."""

    process_id: str
    name: str
    diagram_id: str
    # Every flow element id of the process (nested ones included) → the id drawn for it: itself,
    # or the collapsed event subprocess that contains it.
    shown_as: dict[str, str] = field(default_factory=dict)


@dataclass
class Document:
    xml: str
    views: list[ProcessView]


def _layout_container(container: etree._Element, plane: etree._Element, *, top: float,
                      lanes: dict[str, int]) -> float:
    """Shapes and edges for the direct flow nodes of a process; returns the bottom y used."""
    nodes = [n for n in container if _local(n.tag) and _local(n.tag) not in NOT_NODES and n.get("id")]
    main = [n for n in nodes if not (_local(n.tag) == "subProcess" and n.get("triggeredByEvent") == "true")]
    event_subs = [n for n in nodes if n not in main]
    flows = [f for f in container if _local(f.tag) == "sequenceFlow"]
    outgoing: dict[str, list[str]] = {}
    for flow in flows:
        outgoing.setdefault(flow.get("sourceRef", ""), []).append(flow.get("targetRef", ""))
    ids = [n.get("id", "") for n in main]
    targets = {f.get("targetRef") for f in flows}
    starts = [i for i in ids if i not in targets] or ids[:1]

    # Column = longest path from a start without following edges back into the current path.
    column: dict[str, int] = {}

    def visit(node: str, depth: int, path: frozenset[str]) -> None:
        if column.get(node, -1) >= depth or len(path) > len(ids):
            return
        column[node] = depth
        for nxt in outgoing.get(node, []):
            if nxt not in path and nxt in ids:
                visit(nxt, depth + 1, path | {nxt})

    for start in starts:
        visit(start, 0, frozenset({start}))
    for node in ids:
        column.setdefault(node, 0)

    rows_in_cell: dict[tuple[int, int], int] = {}
    centres: dict[str, tuple[float, float]] = {}
    bounds: dict[str, tuple[float, float, float, float]] = {}
    lane_rows = max(lanes.values(), default=0) + 1
    row_of_lane: dict[int, int] = {}
    for node in sorted(main, key=lambda n: (column[n.get("id", "")], ids.index(n.get("id", "")))):
        node_id = node.get("id", "")
        lane = lanes.get(node_id, 0)
        cell = (lane, column[node_id])
        extra = rows_in_cell.get(cell, 0)
        rows_in_cell[cell] = extra + 1
        row_of_lane[lane] = max(row_of_lane.get(lane, 0), extra + 1)
        width, height = SIZES[_kind(_local(node.tag))]
        cx = MARGIN + COLUMN * column[node_id] + 50
        cy = top + ROW * (sum(row_of_lane.get(i, 1) for i in range(lane)) + extra) + 40
        centres[node_id] = (cx, cy)
        bounds[node_id] = (cx - width / 2, cy - height / 2, width, height)
    bottom = top + ROW * max(sum(row_of_lane.get(i, 1) for i in range(lane_rows)), 1)

    for node in main:
        _shape(plane, node.get("id", ""), bounds[node.get("id", "")], expanded=False)
    for flow in flows:
        source, target = flow.get("sourceRef", ""), flow.get("targetRef", "")
        if source not in centres or target not in centres:
            continue
        (sx, sy), (tx, ty) = centres[source], centres[target]
        points = [(sx, sy), (tx, ty)] if sy == ty else [(sx, sy), ((sx + tx) / 2, sy), ((sx + tx) / 2, ty), (tx, ty)]
        if tx <= sx:  # a loop back: around below
            low = max(sy, ty) + 60
            points = [(sx, sy), (sx, low), (tx, low), (tx, ty)]
        edge = etree.SubElement(plane, f"{{{BPMNDI}}}BPMNEdge", id=f"{flow.get('id')}_di",
                                bpmnElement=flow.get("id", ""))
        for x, y in points:
            etree.SubElement(edge, f"{{{DI}}}waypoint", x=str(int(x)), y=str(int(y)))

    # Event subprocesses: collapsed boxes in a row under the flow.
    for i, sub in enumerate(event_subs):
        _shape(plane, sub.get("id", ""), (MARGIN + i * 130, bottom + 20, 110, 70), expanded=False)
    return bottom + (110 if event_subs else 0)


def _shape(plane: etree._Element, element_id: str, box: tuple[float, float, float, float], *,
           expanded: bool) -> None:
    shape = etree.SubElement(plane, f"{{{BPMNDI}}}BPMNShape", id=f"{element_id}_di", bpmnElement=element_id)
    if expanded:
        shape.set("isExpanded", "true")
    x, y, w, h = box
    etree.SubElement(shape, f"{{{DC}}}Bounds", x=str(int(x)), y=str(int(y)), width=str(int(w)), height=str(int(h)))


def _all_flow_ids(element: etree._Element) -> list[str]:
    return [e.get("id", "") for e in element.iter() if _local(e.tag) and _local(e.tag) not in NOT_NODES
            and e.get("id") and e is not element]


@functools.lru_cache(maxsize=128)
def _layout(xml: str) -> Document:
    root = etree.fromstring(xml.encode())  # noqa: S320 - our own deployed, validated models
    processes = [p for p in root if _local(p.tag) == "process"]
    has_di = any(_local(e.tag) == "BPMNDiagram" for e in root)
    views = []
    for number, process in enumerate(processes):
        process_id = process.get("id", f"process_{number}")
        diagram_id = f"diagram_{process_id}"
        if not has_di:
            diagram = etree.SubElement(root, f"{{{BPMNDI}}}BPMNDiagram", id=diagram_id)
            plane = etree.SubElement(diagram, f"{{{BPMNDI}}}BPMNPlane", id=f"plane_{process_id}",
                                     bpmnElement=process_id)
            lanes: dict[str, int] = {}
            for index, lane in enumerate(e for e in process.iter(f"{{{BPMN}}}lane")):
                for ref in lane.iter(f"{{{BPMN}}}flowNodeRef"):
                    lanes[(ref.text or "").strip()] = index
            _layout_container(process, plane, top=MARGIN, lanes=lanes)
        shown_as = {node_id: node_id for node_id in _all_flow_ids(process)}
        for sub in process.iter(f"{{{BPMN}}}subProcess"):
            if sub.get("triggeredByEvent") == "true":
                for inner in _all_flow_ids(sub):
                    shown_as[inner] = sub.get("id", "")
        views.append(ProcessView(process_id=process_id, name=process.get("name") or process_id,
                                 diagram_id=diagram_id, shown_as=shown_as))
    if has_di:
        diagrams = [e for e in root if _local(e.tag) == "BPMNDiagram"]
        for view, diagram in zip(views, diagrams, strict=False):
            view.diagram_id = diagram.get("id", view.diagram_id)
    text = etree.tostring(root, encoding="unicode")
    return Document(xml=text, views=views)


def with_layout(xml: str) -> Document:
    """The document with diagram interchange (added when missing) and one view per process."""
    return _layout(xml)


def for_designer(xml: str) -> str:
    """The document as the modeler should open it: with diagram interchange, and for a process
    with lanes, a pool (participant) around it with a band per lane, so that a task dropped into
    a band joins that lane. Documents that already carry DI are returned unchanged."""
    root = etree.fromstring(xml.encode())  # noqa: S320 - validated models or the designer's own draft
    if any(_local(e.tag) == "BPMNDiagram" for e in root):
        return xml
    root = etree.fromstring(with_layout(xml).xml.encode())  # noqa: S320 - the same document, laid out
    for process in [p for p in root if _local(p.tag) == "process"]:
        lanes = list(process.iter(f"{{{BPMN}}}lane"))
        plane = next((p for p in root.iter(f"{{{BPMNDI}}}BPMNPlane") if p.get("bpmnElement") == process.get("id")),
                     None)
        if not lanes or plane is None:
            continue
        process_id = process.get("id", "")
        collaboration = etree.Element(f"{{{BPMN}}}collaboration", id=f"collaboration_{process_id}")
        etree.SubElement(collaboration, f"{{{BPMN}}}participant", id=f"pool_{process_id}",
                         name=process.get("name") or process_id, processRef=process_id)
        root.insert(list(root).index(process), collaboration)
        plane.set("bpmnElement", collaboration.get("id", ""))
        boxes = {}
        for shape in plane.iter(f"{{{BPMNDI}}}BPMNShape"):
            bounds = shape.find(f"{{{DC}}}Bounds")
            if bounds is not None:
                boxes[shape.get("bpmnElement")] = tuple(float(bounds.get(k, 0)) for k in ("x", "y", "width", "height"))
        if not boxes:
            continue
        left = min(b[0] for b in boxes.values()) - 60
        right = max(b[0] + b[2] for b in boxes.values()) + 40
        bands: list[tuple[etree._Element, float, float]] = []
        for lane in lanes:
            members = [boxes[ref.text.strip()] for ref in lane.iter(f"{{{BPMN}}}flowNodeRef")
                       if ref.text and ref.text.strip() in boxes]
            top = min((b[1] for b in members), default=0.0) - 30
            bottom = max((b[1] + b[3] for b in members), default=top + 100) + 30
            bands.append((lane, top, bottom))
        y = min(top for _lane, top, _bottom in bands) if bands else 0
        pool_top = y
        first = plane[0] if len(plane) else None
        for lane, top, bottom in bands:
            height = max(bottom - max(top, y), 120)
            shape = etree.Element(f"{{{BPMNDI}}}BPMNShape", id=f"{lane.get('id')}_di", bpmnElement=lane.get("id", ""),
                                  isHorizontal="true")
            etree.SubElement(shape, f"{{{DC}}}Bounds", x=str(int(left + 30)), y=str(int(y)),
                             width=str(int(right - left - 30)), height=str(int(height)))
            plane.insert(0 if first is None else list(plane).index(first), shape)
            y += height
        pool = etree.Element(f"{{{BPMNDI}}}BPMNShape", id=f"pool_{process_id}_di", bpmnElement=f"pool_{process_id}",
                             isHorizontal="true")
        etree.SubElement(pool, f"{{{DC}}}Bounds", x=str(int(left)), y=str(int(pool_top)),
                         width=str(int(right - left)), height=str(int(y - pool_top)))
        plane.insert(0, pool)
    return etree.tostring(root, encoding="unicode")
