"""SpiffWorkflow adapter: parsing, spec cache, state serialization without the spec, timers.

Everything Spiff-specific lives here so that the case service deals in plain values.
"""

from __future__ import annotations

import hashlib
import json
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from copy import deepcopy
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter
from SpiffWorkflow.spiff.specs.defaults import ServiceTask, UserTask
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.task import Task as SpiffTask
from SpiffWorkflow.util.task import TaskState

from engine import clock
from engine.calendar import WorkingCalendar, load_seed_days
from engine.evaluator import RestrictedScriptEngine

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"


class _ProjectDateTime(datetime):
    """``datetime`` whose ``now()`` is the project clock.

    Spiff's timer definitions compare due moments with ``datetime.now(timezone.utc)`` read from the
    module global. The project owns the clock (test mode moves it; due dates come from the
    working-day calendar), so that global is this subclass: no other behaviour changes.
    """

    @classmethod
    def now(cls, tz: Any = None) -> _ProjectDateTime:
        moment = clock.now()
        if tz is not None:
            moment = moment.astimezone(tz)
        return cls.fromtimestamp(moment.timestamp(), moment.tzinfo)


spiff_timer.datetime = _ProjectDateTime


class AsyncServiceTask(ServiceTask):
    """A service task whose call runs in a job, not inside the engine step.

    ``_execute`` evaluates the parameters, stores them on the task and returns None: Spiff leaves
    the task STARTED. A worker performs the call (idempotent by task id) and then
    :func:`finish_service_task` completes it.
    """

    def _execute(self, task: SpiffTask) -> None:
        params = {name: p["value"] for name, p in self.evaluate_params(task).items()}
        task._set_internal_data(service_params=params)
        return None


class MotcuaParser(SpiffBpmnParser):
    OVERRIDE_PARSER_CLASSES = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        f"{{{BPMN_NS}}}serviceTask": (ServiceTaskParser, AsyncServiceTask),
    }


class StateOnlyWorkflowConverter(BpmnWorkflowConverter):
    """Serializes a workflow without its spec; the spec objects are handed in when restoring."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any]) -> BpmnWorkflow:
        from uuid import UUID

        spec = dct.pop("spec")
        subprocess_specs = dct.pop("subprocess_specs")
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _make_serializer() -> BpmnWorkflowSerializer:
    config = deepcopy(SPIFF_CONFIG)
    config[AsyncServiceTask] = ServiceTaskConverter
    config[BpmnWorkflow] = StateOnlyWorkflowConverter
    registry = BpmnWorkflowSerializer.configure(config)
    registry.register(date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"]))
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]))
    return BpmnWorkflowSerializer(registry)


SERIALIZER = _make_serializer()
STATE_VERSION = "motcua-1"


class ProcessModelError(ValueError):
    """A BPMN document that cannot be deployed; ``errors`` holds (line, element id, message)."""

    def __init__(self, errors: list[tuple[int | None, str | None, str]]):
        self.errors = errors
        super().__init__("; ".join(f"line {ln}: {msg}" if ln else msg for ln, _el, msg in errors))


@dataclass(frozen=True)
class ParsedModel:
    """A parsed and serialized process model, ready to be stored as a ProcessSpec."""

    content_hash: str
    process_id: str
    bpmn_xml: str
    spec_json: str
    lanes: frozenset[str]
    library: tuple[str, ...] = ()


LIFECYCLE_PROCESS = "onestop_case"
"""The shared one-stop lifecycle's top process; it calls each procedure's ``procedure_work``."""


def content_hash(bpmn_xml: str, library: Sequence[str] = ()) -> str:
    """Hash of a model: the procedure's BPMN and, when it runs inside one, the lifecycle's."""
    digest = hashlib.sha256(bpmn_xml.encode("utf-8"))
    for document in library:
        digest.update(b"\0library\0")
        digest.update(document.encode("utf-8"))
    return digest.hexdigest()


def _parse_xml(text: str, filename: str) -> Any:
    try:
        return etree.fromstring(text.encode("utf-8"))  # noqa: S320 - lxml, no DTD/entities below
    except etree.XMLSyntaxError as exc:
        raise ProcessModelError([(exc.lineno, None, f"{filename}: XML syntax error: {exc.msg}")]) from exc


def parse_model(
    bpmn_xml: str,
    *,
    library: Sequence[str] = (),
    process_id: str | None = None,
    filename: str = "<bpmn>",
    require_called: bool = True,
) -> ParsedModel:
    """Parse a BPMN document (with the lifecycle ``library`` documents it runs in) using the
    project's task classes; raise ProcessModelError with lines and element ids.

    With a library the top process is the lifecycle's ``onestop_case``; without one, the
    document's single executable process.
    """
    parser = MotcuaParser()
    try:
        parser.add_bpmn_xml(_parse_xml(bpmn_xml, filename), filename=filename)
        for i, document in enumerate(library):
            parser.add_bpmn_xml(_parse_xml(document, f"library[{i}]"), filename=f"library[{i}]")
        if process_id is None and library:
            process_id = LIFECYCLE_PROCESS
        if process_id is None:
            executable = parser.get_process_ids()
            if len(executable) != 1:
                raise ProcessModelError([(None, None, f"expected one executable process, found {executable}")])
            process_id = executable[0]
        spec = parser.get_spec(process_id)
        subprocess_specs = parser.get_subprocess_specs(process_id, require_call_activity_specs=require_called)
    except ValidationException as exc:
        raise ProcessModelError([(exc.line_number or None, exc.id or None, str(exc))]) from exc
    spec_dict = {
        "spec": SERIALIZER.to_dict(spec),
        "subprocess_specs": {name: SERIALIZER.to_dict(s) for name, s in subprocess_specs.items() if s is not None},
    }
    lanes = frozenset(
        lane
        for process in (spec, *(s for s in subprocess_specs.values() if s is not None))
        for ts in process.task_specs.values()
        if (lane := getattr(ts, "lane", None)) is not None
    )
    return ParsedModel(
        content_hash=content_hash(bpmn_xml, library),
        process_id=process_id,
        bpmn_xml=bpmn_xml,
        spec_json=json.dumps(spec_dict, separators=(",", ":")),
        lanes=lanes,
        library=tuple(library),
    )


SpecSource = str | Callable[[], str]
"""The serialized spec, or a function that loads it (called only when the cache misses)."""
_SPEC_CACHE: OrderedDict[str, tuple[Any, dict[str, Any]]] = OrderedDict()
_SPEC_CACHE_SIZE = 256
_spec_lock = threading.Lock()


def _specs_for(content_hash_: str, spec_json: SpecSource) -> tuple[Any, dict[str, Any]]:
    """Parsed spec objects per content hash; specs are immutable, so one copy serves every case."""
    with _spec_lock:
        hit = _SPEC_CACHE.get(content_hash_)
        if hit is not None:
            _SPEC_CACHE.move_to_end(content_hash_)
            return hit
    dct = json.loads(spec_json() if callable(spec_json) else spec_json)
    spec = SERIALIZER.from_dict(dct["spec"])
    subprocess_specs = {name: SERIALIZER.from_dict(s) for name, s in dct["subprocess_specs"].items()}
    with _spec_lock:
        _SPEC_CACHE[content_hash_] = (spec, subprocess_specs)
        while len(_SPEC_CACHE) > _SPEC_CACHE_SIZE:
            _SPEC_CACHE.popitem(last=False)
    return spec, subprocess_specs


# The working-day calendar of the database the current step runs against (set by the case service).
current_calendar: ContextVar[WorkingCalendar | None] = ContextVar("motcua_calendar", default=None)


def working_days_from_now(days: int) -> str:
    """Process function: the end (17:00) of the ``days``-th working day after today, ISO 8601.

    For waiting periods in a process, e.g. a public posting: ``timeDate`` =
    ``posting_until`` set by ``posting_until = working_days_from_now(3)``.
    """
    cal = current_calendar.get() or WorkingCalendar(load_seed_days())
    return cal.due(clock.now(), working_days=int(days)).isoformat()


_SCRIPT_ENGINE = RestrictedScriptEngine(functions={"working_days_from_now": working_days_from_now})


def new_workflow(content_hash_: str, spec_json: SpecSource, data: dict[str, Any]) -> BpmnWorkflow:
    """A new workflow instance with ``data`` as the start data (not run yet)."""
    spec, subprocess_specs = _specs_for(content_hash_, spec_json)
    wf = BpmnWorkflow(spec, subprocess_specs, script_engine=_SCRIPT_ENGINE)
    wf.task_tree.data.update(data)
    for task in wf.get_tasks(state=TaskState.READY):
        task.data.update(data)
    return wf


def dump_state(wf: BpmnWorkflow) -> tuple[bytes, int]:
    """Serialize the workflow without its spec; returns (compressed bytes, uncompressed size)."""
    SERIALIZER.registry._encoder_mode = True  # same switch serialize_json uses for custom data
    try:
        dct = SERIALIZER.to_dict(wf)
    finally:
        SERIALIZER.registry._encoder_mode = False
    dct["v"] = STATE_VERSION
    raw = json.dumps(dct, separators=(",", ":"), default=str).encode("utf-8")
    return zlib.compress(raw, 6), len(raw)


def load_state(state: bytes, content_hash_: str, spec_json: SpecSource) -> BpmnWorkflow:
    """Restore a workflow from :func:`dump_state` output and its (cached) spec."""
    dct = json.loads(zlib.decompress(state))
    if dct.pop("v", None) != STATE_VERSION:
        raise ValueError("unknown workflow state version")
    spec, subprocess_specs = _specs_for(content_hash_, spec_json)
    dct["spec"] = spec
    dct["subprocess_specs"] = subprocess_specs
    wf: BpmnWorkflow = SERIALIZER.from_dict(dct)
    wf.script_engine = _SCRIPT_ENGINE
    return wf


# --- reading tasks ---------------------------------------------------------------------------


def is_user_task(task: SpiffTask) -> bool:
    return isinstance(task.task_spec, UserTask) or bool(task.task_spec.manual)


def is_service_task(task: SpiffTask) -> bool:
    return isinstance(task.task_spec, AsyncServiceTask)


def open_tasks(wf: BpmnWorkflow) -> list[SpiffTask]:
    """READY user tasks and STARTED service tasks: what people or workers must act on."""
    result = []
    for task in wf.get_tasks(state=TaskState.READY | TaskState.STARTED):
        if (task.state == TaskState.READY and is_user_task(task)) or (
            task.state == TaskState.STARTED and is_service_task(task)
        ):
            result.append(task)
    return result


def task_label(task: SpiffTask) -> str:
    return task.task_spec.bpmn_name or task.task_spec.name


def task_properties(task: SpiffTask) -> dict[str, str]:
    """The ``spiffworkflow:properties`` of a task's BPMN element (e.g. deadline, form)."""
    extensions = getattr(task.task_spec, "extensions", None) or {}
    props = extensions.get("properties", {})
    return dict(props) if isinstance(props, dict) else {}


def service_params(task: SpiffTask) -> dict[str, Any]:
    params = task._get_internal_data("service_params")
    return dict(params) if params else {}


def finish_service_task(wf: BpmnWorkflow, task: SpiffTask, result: Any) -> None:
    """Complete a STARTED service task with its call's result and run the engine on."""
    spec = task.task_spec
    assert isinstance(spec, AsyncServiceTask)
    task.data[spec.result_variable] = result
    task.complete()


def find_task(wf: BpmnWorkflow, task_id: str) -> SpiffTask | None:
    from uuid import UUID

    try:
        return wf.get_task_from_id(UUID(task_id))
    except (ValueError, KeyError):
        return None
    except Exception as exc:  # Spiff raises TaskNotFoundException for unknown ids
        if type(exc).__name__ == "TaskNotFoundException":
            return None
        raise


def waiting_timers(wf: BpmnWorkflow) -> list[tuple[str, str, datetime]]:
    """(task id, timer name, due moment) of every waiting timer event, subprocesses included."""
    result = []
    for task in list(wf.event_manager.tasks.values()):
        definition = task.task_spec.event_definition
        if not isinstance(definition, TimerEventDefinition):
            continue
        value = task._get_internal_data("event_value")
        if not isinstance(value, str):  # cycle timers keep a dict; not used by motcua models
            continue
        due = TimerEventDefinition.get_datetime(value)
        result.append((str(task.id), definition.name, due))
    return result


def timer_due(task: SpiffTask) -> datetime | None:
    """The due moment of a timer event task, None for other tasks."""
    definition = getattr(task.task_spec, "event_definition", None)
    if not isinstance(definition, TimerEventDefinition):
        return None
    value = task._get_internal_data("event_value")
    return TimerEventDefinition.get_datetime(value) if isinstance(value, str) else None


def send_message(wf: BpmnWorkflow, name: str, payload: Any) -> None:
    """Deliver a message event; raises WorkflowException if the case is not waiting for it."""
    wf.send_event(BpmnEvent(MessageEventDefinition(name), payload=payload))


def waiting_messages(wf: BpmnWorkflow) -> list[str]:
    """Messages the case would catch now: waiting catch events, and the message start events of
    its event subprocesses (withdrawal, stop, apology), which Spiff starts on delivery."""
    names = []
    for task in wf.event_manager.tasks.values():
        definition = task.task_spec.event_definition
        # an event-based gateway waits for several events at once
        for item in getattr(definition, "event_definitions", None) or [definition]:
            if isinstance(item, MessageEventDefinition):
                names.append(item.name)
    for spec_name in getattr(wf.spec.start, "trigger_specs", []):
        sp_spec = wf.subprocess_specs.get(spec_name)
        for start in getattr(sp_spec, "bpmn_start_events", []):
            definition = start.event_definition
            if isinstance(definition, MessageEventDefinition):
                names.append(definition.name)
    return names


# --- history compaction -------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _protected_specs(spec: Any) -> frozenset[str]:
    """Spec names whose tasks must stay in the tree: joins, their inputs and their split tasks, and
    the tasks just before catch events.

    Spiff's joins find their branches by walking a task's ancestors (``find_ancestor`` for
    structured joins, the first ancestor whose spec is an input for unstructured ones); keeping
    every task of those specs keeps the answer of those walks unchanged after compaction.
    """
    protected: set[str] = set()
    for ts in spec.task_specs.values():
        if isinstance(ts, CatchingEvent):
            # A waiting catch event (message, timer, event-based gateway) merges its parent's data
            # into its own on every update: that parent must stay the task that ran just before,
            # or data set since an older ancestor (a proposal) is overwritten by stale values.
            protected.update(i.name for i in ts.inputs)
        if isinstance(ts, Join):
            protected.add(ts.name)
            protected.update(i.name for i in ts.inputs)
            split = getattr(ts, "split_task", None)
            if split:
                protected.add(split)
    return frozenset(protected)


def _compact(wf: Any) -> int:
    protected = _protected_specs(wf.spec)
    removed = 0
    for task in list(wf.tasks.values()):
        parent = task.parent
        if (
            parent is None
            or task.state != TaskState.COMPLETED
            or len(task._children) != 1
            or len(parent._children) != 1
            or task.task_spec.name in protected
            or (isinstance(task.task_spec, SubWorkflowTask) and task.id in wf.subprocesses)
        ):
            continue
        child = wf.tasks[task._children[0]]
        # Splice: the child takes the task's place under its parent.
        parent._children = [child.id]
        child._parent = parent.id
        del wf.tasks[task.id]
        if wf.last_task is task:
            wf.last_task = child
        removed += 1
    return removed


def compact_history(wf: BpmnWorkflow) -> int:
    """Drop finished tasks from linear stretches of the task tree; returns how many were dropped.

    Spiff keeps every task it ever ran as an ancestor of the live ones, so a rework loop makes the
    tree (and the serialized state and every step's cost) grow with each pass. The case history
    lives in the audit log and the task projection, so finished tasks with a single parent and a
    single child are spliced out, and the workflows of finished subprocesses are dropped. Tasks
    that joins, live subprocesses and boundary events read are kept.
    """
    removed = 0
    # A finished call activity or event subprocess has handed its data back: drop its workflow.
    for task_id in list(wf.subprocesses):
        if task_id not in wf.subprocesses:
            continue  # nested in one deleted just before
        owner = wf.get_task_from_id(task_id)
        if owner.state == TaskState.COMPLETED:
            removed += len(wf.delete_subprocess(owner))
    removed = _compact(wf)
    for sub in wf.subprocesses.values():
        removed += _compact(sub)
    return removed
