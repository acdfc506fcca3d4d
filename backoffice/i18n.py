"""UI language: Vietnamese by default, English on request (Flask-Babel).

Message catalogues are kept as .po sources in backoffice/translations; the compiled .mo files are
build output, so the app compiles them into its instance folder when they are missing or stale.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, request, session
from flask_babel import Babel, get_locale

from backoffice.extensions import motcua

LOCALES = ("vi", "en")
SOURCE_DIR = Path(__file__).parent / "translations"


def compile_catalogues(target: Path) -> Path:
    """Compile every ``<locale>/LC_MESSAGES/messages.po`` under SOURCE_DIR into ``target``."""
    for po_path in sorted(SOURCE_DIR.glob("*/LC_MESSAGES/messages.po")):
        locale = po_path.parent.parent.name
        mo_path = target / locale / "LC_MESSAGES" / "messages.mo"
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=locale)
        # Write next to the target and rename: several processes may start at once.
        fd, tmp = tempfile.mkstemp(dir=mo_path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            write_mo(out, catalog, use_fuzzy=False)
        os.replace(tmp, mo_path)
    return target


def select_locale() -> str:
    chosen = session.get("lang")
    if chosen in LOCALES:
        return str(chosen)
    if request and request.path.startswith("/api/"):
        return request.accept_languages.best_match(LOCALES) or motcua().settings.default_locale
    return motcua().settings.default_locale


def init_i18n(app: Flask) -> None:
    directory = compile_catalogues(Path(app.instance_path) / "translations")
    Babel(app, locale_selector=select_locale, default_translation_directories=str(directory),
          default_locale=motcua(app).settings.default_locale, default_timezone="Asia/Ho_Chi_Minh")
    app.jinja_env.globals["get_locale"] = get_locale
