"""The auditor in the browser: searches the province's dossiers, opens a finished case, sees the
full timeline and the diagram with the path taken, checks the signed result, exports the history
and the search, checks the audit chain, and reads the reports and the dashboard — at the office
screen and on a phone."""

from __future__ import annotations

import io
from pathlib import Path

from openpyxl import load_workbook

from tests.e2e.conftest import Officer, text_of


def test_auditor_opens_a_case_sees_timeline_and_path_and_exports_the_history(browser, live_server):
    auditor = Officer(browser, live_server["url"], "5-auditor")
    auditor.login("auditor")
    auditor.page.wait_for_url("**/audit/")
    assert auditor.page.locator("#dossiers tbody tr").count() >= 2  # the demo's dossiers of both communes
    auditor.fits("search")

    auditor.page.select_option("select[name=status]", "returned")
    auditor.page.click("#audit-search button[type=submit]")
    auditor.page.wait_for_load_state("load")
    first = auditor.page.locator("#dossiers tbody tr td a").first
    code = first.inner_text().strip()
    first.click()
    auditor.page.wait_for_url(f"**/audit/cases/{code}")

    timeline = auditor.page.locator("#audit-timeline > li")
    assert timeline.count() >= 6
    actions = [li.get_attribute("data-action") for li in timeline.all()]
    assert actions[0] == "dossier_submitted"
    assert "task_completed" in actions
    assert "case_finished" in actions
    auditor.page.reload()
    actions = [li.get_attribute("data-action") for li in timeline.all()]
    assert actions[-1] == "dossier_viewed"  # the previous read is on the record, with who read it
    assert "auditor" in text_of(auditor.page, "aside")
    assert "→" in text_of(auditor.page, "#audit-timeline")  # the data the steps changed

    auditor.page.wait_for_selector(".diagram[data-rendered]", state="attached")
    assert auditor.page.locator(".diagram[data-rendered='error']").count() == 0
    assert auditor.page.locator(".djs-element.m-completed").count() >= 4  # receive, appraise, approve, hand back

    documents = text_of(auditor.page, "#signed-documents")
    assert "hợp lệ" in documents
    assert "khớp" in documents

    with auditor.page.expect_download() as download:
        auditor.page.click("#history-xlsx")
    rows = list(load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active.iter_rows(values_only=True))
    assert rows[0][:4] == ("Sự kiện", "Thời gian", "Người thực hiện", "Thao tác")
    exported = [row[3] for row in rows[1:]]
    assert exported[0] == "dossier_submitted"
    assert len(exported) >= timeline.count()  # everything the page showed, and the read of the page itself
    auditor.fits("case")

    with auditor.page.expect_download() as download:
        auditor.goto("/audit/")
        auditor.page.click("#export-csv")
    assert code in Path(download.value.path()).read_text(encoding="utf-8-sig")

    auditor.goto("/audit/chain")
    assert "nguyên vẹn" in text_of(auditor.page, "#chain-result")

    auditor.goto("/reports/")
    assert auditor.page.locator("#ontime-report tbody tr").count() >= 2
    auditor.fits("reports")
    auditor.goto("/reports/dashboard")
    assert auditor.page.locator("#trend-chart svg").count() == 1
    auditor.fits("dashboard")
    auditor.goto("/reports/register?unit=anhoathinh")
    assert auditor.page.locator("#register tbody tr").count() >= 1
    auditor.fits("register")
    auditor.close()
