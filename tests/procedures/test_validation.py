"""`motcua validate`: the shipped procedures pass; a broken copy of each rule fails with file:line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from scripts.cli import main

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ROOT / "processes"
EXAMPLE = "marital_status_confirmation"


def _validate(*paths: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", *map(str, paths)])
    return result.exit_code, result.output


def test_every_shipped_process_is_valid():
    files = sorted(PROCESSES.glob("*/*.bpmn"))
    code, output = _validate(*files)
    assert code == 0, output
    assert f"{len(files)} file(s) valid" in output


@pytest.fixture
def broken(tmp_path: Path):
    """A copy of the example procedure beside a copy of the lifecycle, to break one rule at a time."""
    shutil.copytree(PROCESSES / "_lifecycle", tmp_path / "_lifecycle")
    shutil.copytree(PROCESSES / EXAMPLE, tmp_path / EXAMPLE)
    path = tmp_path / EXAMPLE / "process.bpmn"

    def edit(old: str, new: str) -> tuple[Path, str]:
        text = path.read_text(encoding="utf-8")
        assert old in text, old
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        return path, new

    return edit


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in text)


@pytest.mark.parametrize(
    ("old", "new", "where", "message"),
    [
        ('name="Tư pháp – Hộ tịch"', 'name="Phòng Tư pháp"', 'name="Phòng Tư pháp"',
         "work_lane_justice: lane 'Phòng Tư pháp' maps to no role"),
        ('<spiffworkflow:property name="form" value="appraise"/>', "", 'id="appraise"',
         "appraise: user task has no form"),
        ('<spiffworkflow:property name="form" value="appraise"/>',
         '<spiffworkflow:property name="form" value="no_such_form"/>', 'id="appraise"',
         "appraise: form 'no_such_form' is not in the procedure's task_forms"),
        ('<spiffworkflow:property name="deadline" value="working_days:2"/>', "", 'id="appraise"',
         "appraise: user task has no deadline"),
        ('<spiffworkflow:property name="deadline" value="working_days:2"/>',
         '<spiffworkflow:property name="deadline" value="two days"/>', 'id="appraise"',
         "appraise: unknown deadline 'two days'"),
        ("<bpmn:conditionExpression>decision == 'verify'</bpmn:conditionExpression>",
         "<bpmn:conditionExpression>__import__('os').system('x')</bpmn:conditionExpression>",
         "__import__", "mf_verification:"),
        ("<bpmn:flowNodeRef>appraise</bpmn:flowNodeRef>", "", 'id="appraise"', "appraise: user task is in no lane"),
        # The BPMN 2.0 XSD (lxml): an attribute the standard does not define.
        ('<bpmn:exclusiveGateway id="verify_gw"', '<bpmn:exclusiveGateway speed="fast" id="verify_gw"',
         'speed="fast"', "BPMN 2.0 schema: Element 'bpmn:exclusiveGateway', attribute 'speed'"),
        ('<spiffworkflow:property name="deadline" value="working_days:2"/>',
         '<spiffworkflow:property name="deadline" value="working_days:2"/>\n'
         '          <spiffworkflow:property name="deadline_variable" value="2 days"/>', 'id="appraise"',
         "appraise: deadline_variable '2 days' is not a process variable name"),
        ('<bpmn:sequenceFlow id="mf_verified" sourceRef="verify" targetRef="work_end"/>',
         '<bpmn:sequenceFlow id="mf_verified" sourceRef="verify" targetRef="tell"/>\n'
         '    <bpmn:serviceTask id="tell"><bpmn:extensionElements>\n'
         '      <spiffworkflow:serviceTaskOperator id="sms.blast"/>\n'
         '    </bpmn:extensionElements></bpmn:serviceTask>\n'
         '    <bpmn:sequenceFlow id="mf_told" sourceRef="tell" targetRef="work_end"/>',
         'id="sms.blast"', "tell: unknown connector operation 'sms.blast'"),
        ('<bpmn:sequenceFlow id="mf_verified" sourceRef="verify" targetRef="work_end"/>',
         '<bpmn:sequenceFlow id="mf_verified" sourceRef="verify" targetRef="post"/>\n'
         '    <bpmn:serviceTask id="post"><bpmn:extensionElements>\n'
         '      <spiffworkflow:serviceTaskOperator id="postal.send_result"/>\n'
         '    </bpmn:extensionElements></bpmn:serviceTask>\n'
         '    <bpmn:sequenceFlow id="mf_posted" sourceRef="post" targetRef="work_end"/>',
         'id="postal.send_result"', "post: operation 'postal.send_result' needs the parameter 'address'"),
        ('<bpmn:sequenceFlow id="mf_verified" sourceRef="verify" targetRef="work_end"/>',
         '<bpmn:sequenceFlow id="mf_verified" sourceRef="verify" targetRef="wait_answer"/>\n'
         '    <bpmn:intermediateCatchEvent id="wait_answer">\n'
         '      <bpmn:messageEventDefinition id="wait_answer_def" messageRef="no_such_message"/>\n'
         '    </bpmn:intermediateCatchEvent>\n'
         '    <bpmn:sequenceFlow id="mf_answered" sourceRef="wait_answer" targetRef="work_end"/>',
         'messageRef="no_such_message"', "wait_answer_def: message 'no_such_message' is not defined with a name"),
        ('<bpmn:sequenceFlow id="mf_no_verification" sourceRef="verify_gw" targetRef="work_end"/>',
         '<bpmn:sequenceFlow id="mf_no_verification" sourceRef="verify_gw" targetRef="work_end"/>\n'
         '    <bpmn:sequenceFlow id="mf_again" sourceRef="verify_gw" targetRef="count">\n'
         "      <bpmn:conditionExpression>decision == 'again'</bpmn:conditionExpression>\n"
         '    </bpmn:sequenceFlow>\n'
         '    <bpmn:scriptTask id="count"><bpmn:script>passes = 1</bpmn:script></bpmn:scriptTask>\n'
         '    <bpmn:sequenceFlow id="mf_counted" sourceRef="count" targetRef="verify_gw"/>',
         '<bpmn:scriptTask id="count">', "count: the loop count → verify_gw has no user task or catch event"),
        ('<bpmn:userTask id="verify" name="Xác minh tình trạng hôn nhân">',
         '<bpmn:userTask id="verify" name="Xác minh tình trạng hôn nhân">\n'
         '      <bpmn:standardLoopCharacteristics id="verify_loop" loopMaximum="5000"/>',
         "<bpmn:standardLoopCharacteristics", "verify_loop: a loop needs loopMaximum between 1 and 100"),
    ],
)
def test_each_rule_refuses_a_broken_copy_with_its_line(broken, old, new, where, message):
    path, _ = broken(old, new)
    code, output = _validate(path)
    assert code == 1
    assert f"{path}:{_line_of(path, where)}: {message}" in output, output


def test_xml_and_structure_errors_have_lines(broken):
    path, _ = broken('<bpmn:sequenceFlow id="mf_verified" sourceRef="verify" targetRef="work_end"/>',
                     '<bpmn:sequenceFlow id="mf_verified" sourceRef="verify" targetRef="nowhere"/>')
    code, output = _validate(path)
    assert code == 1
    assert output.startswith(f"{path}:")
    assert ":0:" not in output.splitlines()[0]
    path.write_text(path.read_text(encoding="utf-8").replace("</bpmn:process>", "</bpmn:proces>"), encoding="utf-8")
    code, output = _validate(path)
    assert code == 1
    assert f"{path}:{_line_of(path, '</bpmn:proces>')}: XML syntax error" in output
