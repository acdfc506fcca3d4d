"""The citizen portal pages: registration and submission refuse every bad field with a Vietnamese
message beside it and store nothing; login by SMS code; a citizen never sees another's dossier;
the appointment is explained; supplement, payment and withdrawal from the dossier page."""

from __future__ import annotations

import gc
import html
import io
import re
from datetime import datetime

import pytest
from sqlalchemy import func, select

from backoffice.app import create_app
from engine import catalogue, clock, services
from engine.calendar import VN_TZ
from engine.config import Settings
from engine.db import transaction
from engine.migrate import upgrade
from engine.models import Attachment, Dossier, OtpChallenge, Role, User, UserRole
from engine.security import hash_password
from scripts.seed import CITIZEN, DEMO_PASSWORD, _seed_accounts
from tests.factories import sms_code

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
OTHER_CITIZEN = "079200001234"
REGISTRATION = {"id_number": "042301004321", "full_name": "Trần Thị Bích", "date_of_birth": "2001-03-09",
                "phone": "0912345678", "email": "bich.tran@example.vn", "password": "Bich@2026x"}
BIRTH = {"unit": "anhoathinh", "applicant_type": "individual", "child_full_name": "Lê Minh Khôi",
         "birth_date": "2026-11-02", "gender": "male", "birth_place": "Trạm y tế xã An Hòa Thịnh",
         "mother_full_name": "Trần Thị Bích", "requester_relationship": "Mẹ", "delivery": "counter",
         "declaration": "1"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    path = tmp_path_factory.mktemp("portal") / "portal.db"
    settings = Settings.from_env({}, env="test", database_url=f"sqlite:///{path}")
    upgrade(settings)
    application = create_app(settings)
    with transaction(application.extensions["motcua"].factory) as session:
        _seed_accounts(session)
        catalogue.sync_procedure(session, catalogue.load_definition(
            catalogue.default_processes_dir() / "birth_registration"), actor=services.SYSTEM_ACTOR)
        other = User(username=OTHER_CITIZEN, full_name="Võ Thị Em", password_hash=hash_password(DEMO_PASSWORD),
                     id_number=OTHER_CITIZEN, phone="0900000002")
        other.role_rows = [UserRole(role=Role.CITIZEN.value)]
        session.add(other)
    yield application
    application.extensions["motcua"].engine.dispose()


@pytest.fixture(autouse=True)
def _monday(app):
    clock.freeze(datetime(2026, 11, 16, 9, 0, tzinfo=VN_TZ))


def _count(app, model) -> int:
    with transaction(app.extensions["motcua"].factory) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _csrf(client, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _citizen(app, username: str, phone: str):
    client = app.test_client()
    answer = client.post("/portal/login", data={"id_number": username, "password": DEMO_PASSWORD,
                                                "csrf_token": _csrf(client, "/portal/login")})
    assert answer.headers["Location"].endswith("/portal/code")
    done = client.post("/portal/code", data={"otp": sms_code(app, phone), "csrf_token": _csrf(client, "/portal/code")})
    assert done.status_code == 302, _text(done)[:400]
    client.csrf = _csrf(client, "/portal/")
    return client


def _submit(client, data: dict, files=None):
    body = {**data, "csrf_token": client.csrf}
    if files is not None:
        body["attachments"] = files
    return client.post("/portal/procedures/birth_registration/submit", data=body,
                       content_type="multipart/form-data")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("id_number", "12345", "Phải gồm đúng 12 chữ số của số định danh cá nhân"),
    ("id_number", "003301004321", "3 chữ số đầu không phải mã tỉnh, thành phố"),
    ("id_number", "042101004321", "Không khớp với ngày sinh"),
    ("full_name", "Bích", "Ghi đủ họ và tên, chỉ gồm chữ cái"),
    ("date_of_birth", "2031-01-01", "Ngày sinh không hợp lệ"),
    ("phone", "0212345678", "Số điện thoại di động Việt Nam gồm 10 chữ số"),
    ("email", "bich@", "Địa chỉ thư điện tử không hợp lệ"),
    ("password", "password1", "Mật khẩu cần có chữ hoa, ký tự đặc biệt"),
    ("password", "", "Không được để trống"),
])
def test_registration_page_shows_each_field_error_in_vietnamese_and_stores_nothing(app, field, value, message):
    client = app.test_client()
    before = (_count(app, User), _count(app, OtpChallenge))
    response = client.post("/portal/register", data={**REGISTRATION, field: value,
                                                      "csrf_token": _csrf(client, "/portal/register")})
    assert response.status_code == 422
    page = _text(response)
    # the message sits in the field's own error element
    assert re.search(rf'id="e-{field}" role="alert">[^<]*{re.escape(message)}', page), page[-3000:]
    assert (_count(app, User), _count(app, OtpChallenge)) == before


def test_register_through_the_pages_then_submit(app):
    client = app.test_client()
    body = {**REGISTRATION, "id_number": "042301006666", "phone": "0987111222"}
    response = client.post("/portal/register", data={**body, "csrf_token": _csrf(client, "/portal/register")})
    assert response.headers["Location"].endswith("/portal/code")
    wrong = client.post("/portal/code", data={"otp": "00000", "csrf_token": _csrf(client, "/portal/code")})
    assert wrong.status_code == 422
    assert "Mã không đúng" in _text(wrong)
    done = client.post("/portal/code", data={"otp": sms_code(app, "0987111222"),
                                             "csrf_token": _csrf(client, "/portal/code")})
    assert done.headers["Location"].endswith("/portal/dossiers")
    assert "Bạn chưa có hồ sơ nào" in _text(client.get("/portal/dossiers"))


# The test client spools the 10 MB upload to a temporary file it never closes.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_submission_refuses_bad_fields_and_files_with_messages_and_stores_nothing(app):
    client = _citizen(app, CITIZEN["username"], CITIZEN["phone"])
    before = (_count(app, Dossier), _count(app, Attachment))
    cases = [
        ({**BIRTH, "child_full_name": ""}, None, "child_full_name", "Không được để trống"),
        ({**BIRTH, "birth_date": "2026-13-45"}, None, "birth_date", "Ngày không hợp lệ"),
        ({**BIRTH, "mother_id_number": "12ab"}, None, "mother_id_number", "Không đúng định dạng"),
        ({**BIRTH, "declaration": ""}, None, "declaration", "Vui lòng đánh dấu cam đoan để nộp hồ sơ"),
        ({**BIRTH, "unit": ""}, None, "unit", "Vui lòng chọn xã, phường"),
        ({**BIRTH, "delivery": "post"}, None, "delivery.address", "Không được để trống"),
        ({**BIRTH, "applicant_type": "organisation", "applicant_organisation_name": "HTX Đông",
          "applicant_business_number": "12345"}, None, "applicant.business_number", "Mã số doanh nghiệp"),
        (BIRTH, [(io.BytesIO(b"MZ\x90\x00 not a pdf"), "giay-chung-sinh.pdf", "application/pdf")], "attachments",
         "Nội dung tệp không đúng định dạng application/pdf"),
        (BIRTH, [(io.BytesIO(b"plain text"), "ghi-chu.txt", "text/plain")], "attachments",
         "Vui lòng chọn một giá trị trong danh sách"),
        (BIRTH, [(io.BytesIO(b"%PDF-1.4" + bytes(10 * 1024 * 1024)), "lon.pdf", "application/pdf")], "attachments",
         "Tệp tối đa 10 MB"),
    ]
    for data, files, field, message in cases:
        response = _submit(client, data, files)
        assert response.status_code == 422, (field, message)
        page = _text(response)
        # the message sits in the field's own error element
        assert re.search(rf'id="e-{re.escape(field.replace(".", "-"))}"[^>]*>[^<]*{re.escape(message)}', page) \
            or re.search(rf'id="e-{re.escape(field)}">[^<]*{re.escape(message)}', page), (field, message)
    assert (_count(app, Dossier), _count(app, Attachment)) == before
    del response, page  # the last request holds the spooled 10 MB upload
    gc.collect()


def test_submitted_dossier_page_explains_the_appointment_and_only_its_owner_sees_it(app):
    client = _citizen(app, CITIZEN["username"], CITIZEN["phone"])
    clock.freeze(datetime(2026, 11, 20, 16, 0, tzinfo=VN_TZ))  # Friday after 15:00
    response = _submit(client, BIRTH, [(io.BytesIO(PNG), "giay-chung-sinh.png", "image/png")])
    assert response.status_code == 302, _text(response)[-2000:]
    page = _text(client.get(response.headers["Location"]))
    code = re.search(r'id="dossier-code">([^<]+)<', page).group(1)
    assert "Ngày hẹn trả" in page
    assert "23/11/2026 17:00" in page  # Monday: the weekend is skipped
    assert "cuối tuần, không tính" in page
    assert "Hồ sơ của bạn được nhận sau 15:00" in page
    assert code in _text(client.get("/portal/dossiers"))
    receipt = _text(client.get(f"/portal/dossiers/{code}/receipt"))
    assert f'id="receipt-code">{code}<' in receipt
    assert "23/11/2026 17:00" in receipt
    assert "<svg" in receipt
    assert "giay-chung-sinh.png" in receipt
    other = _citizen(app, OTHER_CITIZEN, "0900000002")
    assert other.get(f"/portal/dossiers/{code}").status_code == 403
    assert other.get(f"/portal/dossiers/{code}/receipt").status_code == 403
    assert code not in _text(other.get("/portal/dossiers"))
    assert other.post(f"/portal/dossiers/{code}/withdraw", data={"reason": "Không cần nữa",
                                                                 "csrf_token": other.csrf}).status_code == 403
    # withdrawal by the owner needs a reason, then ends the case
    refused = client.post(f"/portal/dossiers/{code}/withdraw", data={"reason": "", "csrf_token": client.csrf})
    assert refused.status_code == 422
    assert re.search(r'id="e-reason" role="alert">Không được để trống', _text(refused))
    client.post(f"/portal/dossiers/{code}/withdraw", data={"reason": "Đã đăng ký ở nơi khác",
                                                            "csrf_token": client.csrf})
    with transaction(app.extensions["motcua"].factory) as session:
        assert session.scalar(select(Dossier.status).where(Dossier.code == code)) == "withdrawal_requested"


def test_public_tracking_needs_the_phone_digits(app):
    client = app.test_client()
    with transaction(app.extensions["motcua"].factory) as session:
        code = session.scalar(select(Dossier.code).order_by(Dossier.id.desc()).limit(1))
    assert client.get(f"/portal/track?code={code}&phone_last4=9999").status_code == 404
    found = client.get(f"/portal/track?code={code}&phone_last4=0001")
    assert found.status_code == 200
    assert code in _text(found)


def test_citizens_cannot_skip_the_sms_code_through_the_back_office_login(app):
    client = app.test_client()
    response = client.post("/login", data={"username": CITIZEN["username"], "password": DEMO_PASSWORD,
                                           "csrf_token": _csrf(client, "/login")})
    assert response.headers["Location"].endswith("/portal/login")
    assert client.get("/portal/dossiers").headers["Location"].startswith("/portal/login")


def test_officers_cannot_use_the_citizen_login(app):
    client = app.test_client()
    response = client.post("/portal/login", data={"id_number": "onestop.anhoathinh", "password": DEMO_PASSWORD,
                                                  "csrf_token": _csrf(client, "/portal/login")})
    assert response.status_code == 403
