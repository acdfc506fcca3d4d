"""UI language: every message of the back office has a Vietnamese translation with the same
placeholders, and pages come in Vietnamese by default and in English on request."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from backoffice.app import create_app
from engine.config import Settings
from engine.db import transaction
from engine.migrate import upgrade
from scripts.seed import _seed_accounts

ROOT = Path(__file__).resolve().parents[2]
VI_CATALOGUE = ROOT / "backoffice" / "translations" / "vi" / "LC_MESSAGES" / "messages.po"
# The same mapping as babel.cfg (paths relative to the repository root).
METHOD_MAP = [("backoffice/**.py", "python"), ("backoffice/templates/**.html", "jinja2")]
KEYWORDS = {**DEFAULT_KEYWORDS, "_": None, "gettext": None, "lazy_gettext": None, "_l": None}
PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]")


def _only_backoffice(dirpath: str) -> bool:
    relative = Path(dirpath).relative_to(ROOT)
    if relative.name.startswith((".", "_")):
        return False  # .venv, __pycache__, …
    return relative.parts[0] == "backoffice"


def _extracted() -> dict[tuple[str, str | None], list[str]]:
    """msgid (and context) → where it is used, taken from the sources as `pybabel extract` would."""
    found: dict[tuple[str, str | None], list[str]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
            ROOT, METHOD_MAP, keywords=KEYWORDS, directory_filter=_only_backoffice):
        msgid = message if isinstance(message, str) else message[0]
        found.setdefault((msgid, context), []).append(f"{filename}:{lineno}")
    return found


def _placeholders(text: str) -> set[str]:
    return {p for p in PLACEHOLDER.findall(text) if p != "%%"}


def test_extraction_sees_the_back_office_sources():
    messages = {msgid for msgid, _context in _extracted()}
    # One msgid from each kind of source, so an empty extraction cannot pass the next test.
    assert {"Log in", "%(n)d working day(s) left", "Wrong username or password.", "Users and roles"} <= messages


def test_every_message_has_a_vietnamese_translation():
    with VI_CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle, locale="vi")
    assert catalogue.plural_forms == "nplurals=1; plural=0;"
    problems = []
    for (msgid, context), where in sorted(_extracted().items()):
        entry = catalogue.get(msgid, context)
        place = ", ".join(where)
        if entry is None:
            problems.append(f"missing: {msgid!r} ({place})")
            continue
        strings = [entry.string] if isinstance(entry.string, str) else list(entry.string)
        if not all(s.strip() for s in strings):
            problems.append(f"untranslated: {msgid!r} ({place})")
            continue
        if entry.fuzzy:
            problems.append(f"fuzzy (not compiled): {msgid!r} ({place})")
        ids = [entry.id] if isinstance(entry.id, str) else list(entry.id)
        wanted = set().union(*(_placeholders(i) for i in ids))
        for s in strings:
            if _placeholders(s) != wanted:
                problems.append(f"placeholders differ: {msgid!r} {sorted(wanted)} vs {s!r} ({place})")
    assert not problems, (f"{len(problems)} problem(s) in {VI_CATALOGUE}; run "
                          "`pybabel extract -F babel.cfg -k _l -o /tmp/messages.pot .` and "
                          "`pybabel update -i /tmp/messages.pot -d backoffice/translations`, then translate:\n"
                          + "\n".join(problems))


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    path = tmp_path_factory.mktemp("i18n") / "i18n.db"
    settings = Settings.from_env({}, env="test", database_url=f"sqlite:///{path}")
    upgrade(settings)
    application = create_app(settings)
    with transaction(application.extensions["motcua"].factory) as session:
        _seed_accounts(session)
    yield application
    application.extensions["motcua"].engine.dispose()


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no csrf_token on the page"
    return match.group(1)


def test_pages_are_in_vietnamese_by_default_and_in_english_on_request(app):
    client = app.test_client()
    page = client.get("/login")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<html lang="vi">' in html
    assert "Đăng nhập" in html
    assert "Log in" not in html

    switched = client.post("/lang/en", data={"csrf_token": _csrf(html), "next": "/login"})
    assert switched.status_code in (302, 303)
    english = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in english
    assert "Log in" in english
    assert "Đăng nhập" not in english

    back = client.post("/lang/vi", data={"csrf_token": _csrf(english), "next": "/login"})
    assert back.status_code in (302, 303)
    assert "Đăng nhập" in client.get("/login").get_data(as_text=True)


def test_an_unknown_language_is_not_found(app):
    client = app.test_client()
    token = _csrf(client.get("/login").get_data(as_text=True))
    assert client.post("/lang/fr", data={"csrf_token": token}).status_code == 404
