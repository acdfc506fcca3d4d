"""Admin pages in the browser: Flask-Admin views open for the admin, fit the screens, and the
language switch turns the back office into English."""

from __future__ import annotations

from tests.e2e.conftest import Officer, text_of


def test_admin_views_fit_and_the_ui_switches_to_english(browser, live_server):
    admin = Officer(browser, live_server["url"], "4-admin")
    admin.login("admin")
    admin.page.wait_for_url("**/admin/")
    for view in ("admin_users", "admin_units", "admin_procedures", "admin_calendar", "admin_settings"):
        admin.goto(f"/admin/{view}/")
        assert admin.page.locator("table").count() >= 1, view
        admin.fits(view)
    admin.goto("/login")
    assert "Đăng nhập" in text_of(admin.page, "main")
    admin.page.click("header form[action='/lang/en'] button")
    admin.page.wait_for_load_state("load")
    assert "Log in" in text_of(admin.page, "main")
    assert admin.page.get_attribute("html", "lang") == "en"
    admin.close()
