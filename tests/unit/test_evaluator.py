"""Unit tests for the restricted evaluator of BPMN conditions and scripts (engine/evaluator.py)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from engine.evaluator import (
    MAX_LOOP_ITERATIONS,
    EvaluationError,
    RestrictedEnvironment,
    RestrictedEvaluator,
    RestrictedScriptEngine,
)


@pytest.fixture
def evaluator() -> RestrictedEvaluator:
    return RestrictedEvaluator({"double": lambda value: 2 * value})


@pytest.fixture
def data() -> dict[str, Any]:
    return {
        "decision": "accept",
        "documents": ["cccd.pdf", "don_de_nghi.pdf"],
        "fee": 0,
        "applicant": {"name": "Nguyễn Văn An", "ward": "Phường 1"},
    }


# --- conditions ------------------------------------------------------------------------------------


def test_condition_compares_task_data(evaluator: RestrictedEvaluator, data: dict[str, Any]) -> None:
    assert evaluator.evaluate("decision == 'accept'", data) is True
    assert evaluator.evaluate("decision == 'accept'", {**data, "decision": "reject"}) is False


def test_condition_combines_len_arithmetic_and_boolean_ops(
    evaluator: RestrictedEvaluator, data: dict[str, Any]
) -> None:
    assert evaluator.evaluate("len(documents) >= 2 and fee == 0", data) is True
    assert evaluator.evaluate("len(documents) >= 2 and fee == 0", {**data, "fee": 50000}) is False
    assert evaluator.evaluate("fee + 10 if decision != 'accept' else -1", data) == -1


def test_condition_reads_nested_values_with_dict_get(evaluator: RestrictedEvaluator, data: dict[str, Any]) -> None:
    assert evaluator.evaluate("applicant.get('ward') == 'Phường 1'", data) is True
    assert evaluator.evaluate("applicant.get('phone', 'none')", data) == "none"
    assert evaluator.evaluate("applicant['name'].lower().startswith('nguyễn')", data) is True


def test_comprehensions_slices_fstrings_and_safe_builtins(
    evaluator: RestrictedEvaluator, data: dict[str, Any]
) -> None:
    assert evaluator.evaluate("[d.upper() for d in documents if d.endswith('.pdf')][:1]", data) == ["CCCD.PDF"]
    assert evaluator.evaluate("f'{len(documents)} files, fee {fee:,}'", {**data, "fee": 50000}) == (
        "2 files, fee 50,000"
    )
    assert evaluator.evaluate("sorted(set(d.split('.')[1] for d in documents))", data) == ["pdf"]
    assert evaluator.evaluate("'cccd.pdf' in documents and 'x' not in documents", data) is True
    assert evaluator.evaluate("{k: v for k, v in applicant.items() if k == 'ward'}", data) == {"ward": "Phường 1"}


def test_registered_function_is_callable(evaluator: RestrictedEvaluator, data: dict[str, Any]) -> None:
    assert evaluator.evaluate("double(len(documents))", data) == 4


def test_condition_with_surrounding_xml_whitespace(evaluator: RestrictedEvaluator, data: dict[str, Any]) -> None:
    assert evaluator.evaluate("\n      decision == 'accept'\n    ", data) is True


def test_datetimes_and_decimals_keep_their_types(evaluator: RestrictedEvaluator) -> None:
    received = datetime(2025, 7, 1, 8, 30, tzinfo=UTC)
    task_data: dict[str, Any] = {"received": received, "due": date(2025, 7, 4), "fee": Decimal("12500.50")}

    assert evaluator.evaluate("received.date() < due", task_data) is True
    evaluator.execute(
        "total = fee * 2\nnext_day = received + delta\nstamp = received.isoformat()",
        task_data,
        extra={"delta": timedelta(days=1)},
    )

    assert task_data["total"] == Decimal("25001.00")
    assert isinstance(task_data["total"], Decimal)
    assert task_data["next_day"] == datetime(2025, 7, 2, 8, 30, tzinfo=UTC)
    assert task_data["stamp"] == "2025-07-01T08:30:00+00:00"
    assert task_data["received"] is received
    assert "delta" not in task_data  # extra names are readable, never stored


# --- scripts ---------------------------------------------------------------------------------------


def test_script_assigns_updates_and_deletes_task_data(evaluator: RestrictedEvaluator, data: dict[str, Any]) -> None:
    data["temp"] = "scratch"
    data["count"] = 1
    evaluator.execute(
        "fee = 0 if len(documents) >= 2 else 50000\n"
        "applicant['checked'] = True\n"
        "count += 1\n"
        "names = []\n"
        "for d in documents:\n"
        "    if d.startswith('cccd'):\n"
        "        continue\n"
        "    names.append(d)\n"
        "del temp\n",
        data,
    )

    assert data["fee"] == 0
    assert data["applicant"] == {"name": "Nguyễn Văn An", "ward": "Phường 1", "checked": True}
    assert data["count"] == 2
    assert data["names"] == ["don_de_nghi.pdf"]
    assert "temp" not in data


def test_script_leaves_only_json_like_data(evaluator: RestrictedEvaluator, data: dict[str, Any]) -> None:
    evaluator.execute("n = double(len(documents))\nlabel = str(n)", data)

    assert set(data) == {"decision", "documents", "fee", "applicant", "n", "label"}
    assert not any(callable(value) for value in data.values())
    assert json.loads(json.dumps(data)) == data


def test_indented_script_from_xml_is_dedented(evaluator: RestrictedEvaluator) -> None:
    task_data: dict[str, Any] = {}
    evaluator.execute("\n        a = 1\n        b = a + 1\n    ", task_data)
    assert task_data == {"a": 1, "b": 2}


def test_failed_script_leaves_task_data_untouched(evaluator: RestrictedEvaluator, data: dict[str, Any]) -> None:
    before = copy.deepcopy(data)
    with pytest.raises(EvaluationError, match="ZeroDivisionError") as caught:
        evaluator.execute("applicant['ward'] = 'x'\ndocuments.append('y')\nnew = 1\nfee = 1 / 0", data)
    assert caught.value.line == 4
    assert data == before


@pytest.mark.parametrize(
    ("script", "fragment"),
    [
        ("double = 3", "cannot assign to 'double': it is a registered function"),
        ("for double in documents:\n    pass", "registered function"),
        ("len = 3", "cannot assign to 'len': it is a built-in function"),
        ("del len", "cannot delete 'len'"),
    ],
)
def test_script_cannot_overwrite_functions(
    evaluator: RestrictedEvaluator, data: dict[str, Any], script: str, fragment: str
) -> None:
    with pytest.raises(EvaluationError, match=fragment):
        evaluator.execute(script, data)


def test_task_data_cannot_shadow_a_registered_function(evaluator: RestrictedEvaluator) -> None:
    with pytest.raises(EvaluationError, match="overwrites registered function"):
        evaluator.execute("x = 1", {"double": 5})


@pytest.mark.parametrize(
    ("script", "fragment"),
    [
        ("f = len", "holds a builtin_function_or_method"),
        ("s = set(documents)", "holds a set"),
        ("k = applicant.keys()", "holds a dict_keys"),
        ("loop = []\nloop.append(loop)", "contains itself"),
        ("m = {1: 'a'}", "dictionary key"),
    ],
)
def test_values_that_cannot_be_stored_are_refused(
    evaluator: RestrictedEvaluator, data: dict[str, Any], script: str, fragment: str
) -> None:
    before = copy.deepcopy(data)
    with pytest.raises(EvaluationError, match=fragment):
        evaluator.execute(script, data)
    assert data == before


# --- escapes ---------------------------------------------------------------------------------------


ESCAPES = [
    ("__import__('os')", "name '__import__' is not allowed"),
    ("().__class__.__bases__[0].__subclasses__()", "attribute '__bases__' is not allowed"),
    ("x.__class__", "attribute '__class__' is not allowed"),
    ("'{0.__class__}'.format(x)", r"method \.format\(\) is not allowed"),
    ("'{x}'.format_map(applicant)", r"method \.format_map\(\) is not allowed"),
    ("getattr(x, 'a')", "function 'getattr' is not allowed"),
    ("open('/etc/passwd')", "function 'open' is not allowed"),
    ("eval('1')", "function 'eval' is not allowed"),
    ("exec('1')", "function 'exec' is not allowed"),
    ("lambda: 1", "lambda is not allowed"),
    ("[].append.__self__", "attribute '__self__' is not allowed"),
    ("globals()", "function 'globals' is not allowed"),
    ("type(x)", "function 'type' is not allowed"),
    ("vars()", "function 'vars' is not allowed"),
    ("x.real", "attribute access is not allowed"),
    ("(y := 1)", r"assignment expressions \(:=\) are not allowed"),
    ("documents[0].encode()", r"method \.encode\(\) is not allowed"),
    ("double.__globals__", "attribute '__globals__' is not allowed"),
    ("applicant.get('name').format()", r"method \.format\(\) is not allowed"),
    ("f'{x!r:{fmt}}'", "format specifications must be constant"),
    ("(lambda: 1)()", "lambda is not allowed"),
    ("applicant['f']()", "only built-in functions, registered functions and safe methods can be called"),
    ("documents.append(1)", "changes data: not allowed in a condition"),
]


@pytest.mark.parametrize(("expression", "fragment"), ESCAPES)
def test_expression_escape_is_refused(evaluator: RestrictedEvaluator, expression: str, fragment: str) -> None:
    with pytest.raises(EvaluationError, match=fragment):
        evaluator.validate_expression(expression)
    with pytest.raises(EvaluationError, match=fragment):
        evaluator.evaluate(expression, {"x": 1, "documents": [], "applicant": {}, "fmt": ""})


SCRIPT_ESCAPES = [
    ("import os", "import is not allowed"),
    ("from os import system", "import is not allowed"),
    ("while True:\n    pass", "while loops are not allowed"),
    ("def f():\n    pass", "defining functions"),
    ("class A:\n    pass", "defining classes"),
    ("global x", "global declarations"),
    ("with x:\n    pass", "with blocks"),
    ("try:\n    pass\nexcept Exception:\n    pass", "try blocks"),
    ("raise ValueError()", "raise is not allowed"),
    ("x: int = 1", "annotated assignments"),
    ("x = (yield)", "yield is not allowed"),
    ("x = _private", "name '_private' is not allowed"),
    ("x.attr = 1", "attribute access is not allowed"),
]


@pytest.mark.parametrize(("script", "fragment"), SCRIPT_ESCAPES)
def test_script_escape_is_refused(evaluator: RestrictedEvaluator, script: str, fragment: str) -> None:
    with pytest.raises(EvaluationError, match=fragment):
        evaluator.validate_script(script)
    with pytest.raises(EvaluationError, match=fragment):
        evaluator.execute(script, {"x": 1})


def test_script_is_refused_before_any_of_it_runs() -> None:
    calls: list[int] = []
    evaluator = RestrictedEvaluator({"record": lambda: calls.append(1)})
    task_data: dict[str, Any] = {}

    with pytest.raises(EvaluationError, match="import is not allowed"):
        evaluator.execute("record()\nstarted = True\nimport os", task_data)

    assert calls == []
    assert task_data == {}


def test_safe_method_name_on_an_unsafe_receiver_is_refused_at_run_time(evaluator: RestrictedEvaluator) -> None:
    # .get is a safe name for dicts; on a function (or a list) it must not resolve.
    with pytest.raises(EvaluationError, match=r"method \.get\(\) is not allowed on function values"):
        evaluator.evaluate("double.get('x')", {})
    with pytest.raises(EvaluationError, match=r"method \.get\(\) is not allowed on list values"):
        evaluator.evaluate("documents.get(0)", {"documents": []})


# --- resource limits -------------------------------------------------------------------------------


BOMBS = [
    ("9**9**9", "exponent 387420489 is too large"),
    ("10**5000", "power would exceed"),
    ("'a'*10**9", "repetition would have 1,000,000,000 items"),
    ("[0]*10**7", "repetition would have 10,000,000 items"),
    ("range(10**12)", r"range\(\) of 1,000,000,000,000 items is too long"),
    ("1 << 10**9", "shift would exceed"),
    ("'%*d' % (10**9, 1)", "'%' formatting of text is not allowed"),
    ("f'{fee:>1000000}'", "width or precision above"),
    ("round(5, -10**9)", r"round\(\) to -1000000000 digits"),
    ("sum([[0]*1000]*1000, [])", r"sum\(\) adds numbers only"),
    ("[1 for a in range(1000) for b in range(1000)]", "too many loop iterations"),
    ("'x'.join(['a'*10**5]*100)", "joined text would have"),
    ("('a'*1000).replace('', 'b'*1000)", "replaced text would have"),
    ("str([['a'*1000]*1000]*1000)", "text would be longer than"),
    ("[*documents, *documents]", r"unpacking \(\*\) inside a list"),
]


@pytest.mark.parametrize(("expression", "fragment"), BOMBS)
def test_resource_bomb_in_expression_is_refused(
    evaluator: RestrictedEvaluator, expression: str, fragment: str
) -> None:
    with pytest.raises(EvaluationError, match=fragment):
        evaluator.evaluate(expression, {"fee": 1, "documents": []})


@pytest.mark.parametrize(
    ("script", "fragment", "line"),
    [
        ("n = 0\nfor i in range(1000):\n    for j in range(1000):\n        n += 1", "too many loop iterations", 3),
        ("s = 'ab'\nfor i in range(40):\n    s = s + s", "concatenation would have", 3),
        ("big = list(range(10**6))\nfor i in range(100):\n    t = sum(big)", "too much work", 3),
        ("n = 2\nfor i in range(100):\n    n = n * n", "product would exceed", 3),
        ("items = [0]\nfor i in items:\n    items.append(i)", "too many loop iterations", 2),
    ],
)
def test_resource_bomb_in_script_is_refused(
    evaluator: RestrictedEvaluator, script: str, fragment: str, line: int
) -> None:
    with pytest.raises(EvaluationError, match=fragment) as caught:
        evaluator.execute(script, {})
    assert caught.value.line == line


def test_loop_cap_allows_work_below_it(evaluator: RestrictedEvaluator) -> None:
    task_data: dict[str, Any] = {}
    evaluator.execute(f"n = 0\nfor i in range({MAX_LOOP_ITERATIONS}):\n    n += 1", task_data)
    assert task_data["n"] == MAX_LOOP_ITERATIONS


# --- line numbers ----------------------------------------------------------------------------------


def test_syntax_error_reports_its_line(evaluator: RestrictedEvaluator) -> None:
    with pytest.raises(EvaluationError, match="syntax error") as caught:
        evaluator.validate_script("a = 1\nb = 2\nc = = 3\nd = 4")
    assert caught.value.line == 3
    assert str(caught.value).startswith("line 3: ")


def test_forbidden_construct_reports_its_line(evaluator: RestrictedEvaluator) -> None:
    with pytest.raises(EvaluationError, match="import is not allowed") as caught:
        evaluator.execute("a = 1\nb = a + 1\nimport os\nc = 3", {})
    assert caught.value.line == 3


def test_runtime_error_reports_its_line_and_a_suggestion(evaluator: RestrictedEvaluator) -> None:
    with pytest.raises(EvaluationError, match="ZeroDivisionError") as caught:
        evaluator.execute("a = 1\nb = 0\nc = a / b", {})
    assert caught.value.line == 3

    with pytest.raises(EvaluationError, match="did you mean 'decision'") as caught:
        evaluator.evaluate("decison == 'accept'", {"decision": "accept"})
    assert caught.value.line == 1


# --- through SpiffWorkflow -------------------------------------------------------------------------

BPMN_NS = 'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'

FEE_CHECK_BPMN = f"""<bpmn:definitions {BPMN_NS} id="defs_fee_check" targetNamespace="https://motcua.test">
  <bpmn:process id="fee_check" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f_start</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="check" />
    <bpmn:scriptTask id="check" name="Check dossier">
      <bpmn:incoming>f_start</bpmn:incoming>
      <bpmn:outgoing>f_check</bpmn:outgoing>
      <bpmn:script>
        complete = len(documents) &gt;= 2
        fee = 0 if complete else 50000
        decision = 'accept' if complete else 'reject'
      </bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f_check" sourceRef="check" targetRef="decide" />
    <bpmn:exclusiveGateway id="decide" name="Complete?">
      <bpmn:incoming>f_check</bpmn:incoming>
      <bpmn:outgoing>f_accept</bpmn:outgoing>
      <bpmn:outgoing>f_reject</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f_accept" sourceRef="decide" targetRef="accept">
      <bpmn:conditionExpression>decision == 'accept'</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_reject" sourceRef="decide" targetRef="reject">
      <bpmn:conditionExpression>decision != 'accept' and fee &gt; 0</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:scriptTask id="accept" name="Accept">
      <bpmn:incoming>f_accept</bpmn:incoming>
      <bpmn:outgoing>f_accept_end</bpmn:outgoing>
      <bpmn:script>outcome = f"accepted {{len(documents)}} documents"</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:scriptTask id="reject" name="Ask for payment">
      <bpmn:incoming>f_reject</bpmn:incoming>
      <bpmn:outgoing>f_reject_end</bpmn:outgoing>
      <bpmn:script>outcome = f"fee due: {{fee}}"</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f_accept_end" sourceRef="accept" targetRef="end_accept" />
    <bpmn:sequenceFlow id="f_reject_end" sourceRef="reject" targetRef="end_reject" />
    <bpmn:endEvent id="end_accept"><bpmn:incoming>f_accept_end</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="end_reject"><bpmn:incoming>f_reject_end</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def one_script_bpmn(script: str) -> str:
    return f"""<bpmn:definitions {BPMN_NS} id="defs_one" targetNamespace="https://motcua.test">
  <bpmn:process id="one_script" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="run" />
    <bpmn:scriptTask id="run" name="Run">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="run" targetRef="end" />
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def start_workflow(bpmn: str, process_id: str, start_data: dict[str, Any]) -> BpmnWorkflow:
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(bpmn.encode("utf-8"))
    workflow = BpmnWorkflow(parser.get_spec(process_id), script_engine=RestrictedScriptEngine())
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update(start_data)
    return workflow


def completed_specs(workflow: BpmnWorkflow) -> set[str]:
    return {task.task_spec.name for task in workflow.get_tasks(state=TaskState.COMPLETED)}


@pytest.mark.parametrize(
    ("documents", "taken", "skipped", "outcome"),
    [
        (["cccd.pdf", "don.pdf"], "accept", "reject", "accepted 2 documents"),
        (["don.pdf"], "reject", "accept", "fee due: 50000"),
    ],
)
def test_spiff_runs_scripts_and_gateway_conditions(
    documents: list[str], taken: str, skipped: str, outcome: str
) -> None:
    workflow = start_workflow(FEE_CHECK_BPMN, "fee_check", {"documents": documents})

    workflow.do_engine_steps()

    assert workflow.is_completed()
    done = completed_specs(workflow)
    assert taken in done
    assert skipped not in done
    [branch_task] = workflow.get_tasks(spec_name=taken)
    assert branch_task.data["outcome"] == outcome
    assert branch_task.data["documents"] == documents
    assert set(branch_task.data) == {"documents", "complete", "fee", "decision", "outcome"}


def test_spiff_script_escape_fails_without_side_effect(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    script = f"started = True\n__import__('os').system('touch {marker}')"
    workflow = start_workflow(one_script_bpmn(script), "one_script", {"case": 1})

    with pytest.raises(WorkflowTaskException) as caught:
        workflow.do_engine_steps()

    assert "name '__import__' is not allowed" in str(caught.value)
    assert caught.value.line_number == 2
    assert caught.value.error_line == f"__import__('os').system('touch {marker}')"
    assert not marker.exists()
    [task] = workflow.get_tasks(spec_name="run")
    assert task.state == TaskState.ERROR
    assert task.data == {"case": 1}


def test_spiff_script_runtime_error_carries_message_and_line() -> None:
    workflow = start_workflow(one_script_bpmn("a = 1\nb = a / 0"), "one_script", {})

    with pytest.raises(WorkflowTaskException, match="ZeroDivisionError") as caught:
        workflow.do_engine_steps()

    assert caught.value.line_number == 2
    assert caught.value.error_type == "EvaluationError"


def test_spiff_condition_error_carries_the_evaluator_message() -> None:
    bpmn = FEE_CHECK_BPMN.replace("decision == 'accept'", "decision.__class__ == 'accept'")
    workflow = start_workflow(bpmn, "fee_check", {"documents": []})

    with pytest.raises(WorkflowTaskException, match="attribute '__class__' is not allowed"):
        workflow.do_engine_steps()


def test_script_engine_validate_and_call_service() -> None:
    engine = RestrictedScriptEngine()
    engine.validate("decision == 'accept'")
    with pytest.raises(EvaluationError, match="name '__import__' is not allowed"):
        engine.validate("__import__('os')")
    with pytest.raises(NotImplementedError, match="service tasks run through the case service"):
        RestrictedEnvironment().call_service({}, operation_name="x")


def test_environment_execute_returns_true_and_updates_context() -> None:
    context: dict[str, Any] = {"a": 1}
    assert RestrictedEnvironment().execute("b = a + 1", context) is True
    assert context == {"a": 1, "b": 2}
