"""Citizen accounts: registration checked against the CCCD rules, SMS one-time codes, password
reset, and the applicant identities a citizen may submit for.

Field errors are short English sentences with no values in them: the portal shows each through
the Vietnamese catalogue (backoffice/translations), the API returns them as they are.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import accounts, clock
from engine.audit import record_event
from engine.models import OtpChallenge, Role, User, UserRole
from engine.security import hash_password
from engine.services import ConflictError, InvalidDataError, ServiceError

# Province / centrally-run city codes of the CCCD number (Circular 07/2016/TT-BCA, annex I): the
# place of birth registration. Numbers keep them after the 2025 merger of provinces.
PROVINCE_CODES = {
    "001": "Hà Nội", "002": "Hà Giang", "004": "Cao Bằng", "006": "Bắc Kạn", "008": "Tuyên Quang",
    "010": "Lào Cai", "011": "Điện Biên", "012": "Lai Châu", "014": "Sơn La", "015": "Yên Bái",
    "017": "Hòa Bình", "019": "Thái Nguyên", "020": "Lạng Sơn", "022": "Quảng Ninh", "024": "Bắc Giang",
    "025": "Phú Thọ", "026": "Vĩnh Phúc", "027": "Bắc Ninh", "030": "Hải Dương", "031": "Hải Phòng",
    "033": "Hưng Yên", "034": "Thái Bình", "035": "Hà Nam", "036": "Nam Định", "037": "Ninh Bình",
    "038": "Thanh Hóa", "040": "Nghệ An", "042": "Hà Tĩnh", "044": "Quảng Bình", "045": "Quảng Trị",
    "046": "Thừa Thiên Huế", "048": "Đà Nẵng", "049": "Quảng Nam", "051": "Quảng Ngãi", "052": "Bình Định",
    "054": "Phú Yên", "056": "Khánh Hòa", "058": "Ninh Thuận", "060": "Bình Thuận", "062": "Kon Tum",
    "064": "Gia Lai", "066": "Đắk Lắk", "067": "Đắk Nông", "068": "Lâm Đồng", "070": "Bình Phước",
    "072": "Tây Ninh", "074": "Bình Dương", "075": "Đồng Nai", "077": "Bà Rịa – Vũng Tàu",
    "079": "Hồ Chí Minh", "080": "Long An", "082": "Tiền Giang", "083": "Bến Tre", "084": "Trà Vinh",
    "086": "Vĩnh Long", "087": "Đồng Tháp", "089": "An Giang", "091": "Kiên Giang", "092": "Cần Thơ",
    "093": "Hậu Giang", "094": "Sóc Trăng", "095": "Bạc Liêu", "096": "Cà Mau",
}
# The 4th digit: century of birth and gender (Circular 07/2016 art. 7 / Decree 137/2015 art. 7).
CENTURY_GENDER = {"0": (1900, "male"), "1": (1900, "female"), "2": (2000, "male"), "3": (2000, "female"),
                  "4": (2100, "male"), "5": (2100, "female"), "6": (2200, "male"), "7": (2200, "female"),
                  "8": (2300, "male"), "9": (2300, "female")}
# Vietnamese mobile numbers: 10 digits, networks 03x, 05x, 07x, 08x, 09x (after the 2018 renumbering).
MOBILE = re.compile(r"^0[35789][0-9]{8}$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
NAME = re.compile(r"^[^\W\d_]+(?:[ '’-][^\W\d_]+)+$")
BUSINESS_NUMBER = re.compile(r"^[0-9]{10}(-[0-9]{3})?$")  # mã số doanh nghiệp (Decree 01/2021), branches -NNN
BUDGET_CODE = re.compile(r"^[0-9]{7}$")  # mã số đơn vị có quan hệ với ngân sách (Circular 185/2015)
PASSWORD_MIN = 8

OTP_TTL = timedelta(minutes=5)
OTP_MAX_ATTEMPTS = 5  # wrong codes before the challenge is dead
OTP_RESEND_INTERVAL = timedelta(seconds=60)
OTP_MAX_SENDS = 3  # the first SMS and two resends
OTP_PHONE_HOURLY = 6  # SMS codes one phone can receive in an hour, all purposes together
# Registrations and resets one address may start in an hour. Generous: a commune's computer corner
# serves many citizens behind one address; this only stops a script sending codes to many phones.
OTP_IP_HOURLY = 30
OTP_PURPOSES = ("register", "login", "reset", "consent")


class RateLimitedError(ServiceError):
    """Too many codes asked for; ``retry_after``: seconds until one can be asked again (Retry-After)."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int, fields: Mapping[str, Any] | None = None):
        super().__init__(message, fields=fields)
        self.retry_after = retry_after


class OtpError(InvalidDataError):
    """The code itself was refused (wrong, expired, used up): the failed try is kept."""


# --- field checks ---------------------------------------------------------------------------------

def normalise_phone(value: Any) -> str:
    text = re.sub(r"[\s.()-]", "", str(value or ""))
    if text.startswith("+84"):
        text = "0" + text[3:]
    elif text.startswith("84") and len(text) == 11:
        text = "0" + text[2:]
    return text


def parse_birth_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value or "").strip())
    except ValueError:
        return None


def id_number_errors(value: str, born: date | None) -> list[str]:
    """The CCCD number (12 digits): province code, century/gender digit and year against the date
    of birth."""
    if not re.fullmatch(r"[0-9]{12}", value):
        return ["must be the 12 digits of the citizen identity card"]
    if value[:3] not in PROVINCE_CODES:
        return ["the first 3 digits are not a province code"]
    if born is not None:
        century, _gender = CENTURY_GENDER[value[3]]
        if century + int(value[4:6]) != born.year:
            return ["does not match the date of birth (digits 4 to 6 give the year of birth)"]
    return []


def password_errors(value: str) -> list[str]:
    problems = []
    if len(value) < PASSWORD_MIN:
        problems.append("at least 8 characters")
    if not re.search(r"[a-z]", value):
        problems.append("a lower-case letter")
    if not re.search(r"[A-Z]", value):
        problems.append("an upper-case letter")
    if not re.search(r"[0-9]", value):
        problems.append("a digit")
    if not re.search(r"[^A-Za-z0-9]", value):
        problems.append("a special character")
    return ["the password needs " + ", ".join(problems)] if problems else []


def registration_fields(body: Mapping[str, Any], *, today: date) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Clean values and field errors of a registration form (every field is checked)."""
    errors: dict[str, list[str]] = {}
    full_name = " ".join(str(body.get("full_name") or "").split())
    if not full_name:
        errors["full_name"] = ["required"]
    elif len(full_name) > 100 or not NAME.fullmatch(full_name):
        errors["full_name"] = ["family name and given name, letters only"]
    born = parse_birth_date(body.get("date_of_birth"))
    if not str(body.get("date_of_birth") or "").strip():
        errors["date_of_birth"] = ["required"]
    elif born is None:
        errors["date_of_birth"] = ["not a valid date"]
    elif born > today or born.year < 1900:
        errors["date_of_birth"] = ["not a possible date of birth"]
        born = None
    id_number = str(body.get("id_number") or "").strip()
    if not id_number:
        errors["id_number"] = ["required"]
    elif problems := id_number_errors(id_number, born):
        errors["id_number"] = problems
    phone = normalise_phone(body.get("phone"))
    if not phone:
        errors["phone"] = ["required"]
    elif not MOBILE.fullmatch(phone):
        errors["phone"] = ["a Vietnamese mobile number of 10 digits"]
    email = str(body.get("email") or "").strip().lower()
    if email and (len(email) > 200 or not EMAIL.fullmatch(email)):
        errors["email"] = ["not a valid e-mail address"]
    password = str(body.get("password") or "")
    if not password:
        errors["password"] = ["required"]
    elif problems := password_errors(password):
        errors["password"] = problems
    clean = {"full_name": full_name, "date_of_birth": born, "id_number": id_number, "phone": phone,
             "email": email or None, "password": password}
    return clean, errors


def applicant_errors(applicant: Mapping[str, Any]) -> dict[str, list[str]]:
    """The applicant block of a submission: an individual, an organisation (business registration
    number) or a budget unit (budget relationship code)."""
    errors: dict[str, list[str]] = {}
    kind = applicant.get("type", "individual")
    if kind not in ("individual", "organisation", "budget_unit"):
        return {"applicant.type": ["individual, organisation or budget unit"]}
    if kind != "individual":
        if len(str(applicant.get("organisation_name") or "").strip()) < 2:
            errors["applicant.organisation_name"] = ["required"]
        if kind == "organisation" and not BUSINESS_NUMBER.fullmatch(str(applicant.get("business_number") or "")):
            errors["applicant.business_number"] = ["the business registration number: 10 digits (branch: -3 digits)"]
        if kind == "budget_unit" and not BUDGET_CODE.fullmatch(str(applicant.get("budget_code") or "")):
            errors["applicant.budget_code"] = ["the budget relationship code: 7 digits"]
    phone = applicant.get("phone")
    if phone and not MOBILE.fullmatch(normalise_phone(phone)):
        errors["applicant.phone"] = ["a Vietnamese mobile number of 10 digits"]
    email = applicant.get("email")
    if email and not EMAIL.fullmatch(str(email)):
        errors["applicant.email"] = ["not a valid e-mail address"]
    return errors


# --- one-time codes -------------------------------------------------------------------------------

def _hash_code(code: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(8)
    return salt + hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()[:48]


def _code_matches(stored: str, code: str) -> bool:
    return hmac.compare_digest(stored, _hash_code(code.strip(), stored[:16]))


def _retry_after(oldest: datetime | None, now: datetime) -> int:
    """Seconds until the oldest code of an hourly window leaves it."""
    if oldest is None:
        return 3600
    if oldest.tzinfo is None:  # stored in UTC (engine.models.UTCDateTime)
        oldest = oldest.replace(tzinfo=UTC)
    return accounts.seconds_until(oldest + timedelta(hours=1), now)


def _check_phone_quota(session: Session, phone: str, now: datetime) -> None:
    window = OtpChallenge.phone == phone, OtpChallenge.last_sent_at > now - timedelta(hours=1)
    sent = session.scalar(select(func.coalesce(func.sum(OtpChallenge.sends), 0)).where(*window))
    if int(sent or 0) >= OTP_PHONE_HOURLY:
        oldest = session.scalar(select(func.min(OtpChallenge.last_sent_at)).where(*window))
        raise RateLimitedError("too many codes sent to this phone; try again in an hour",
                               retry_after=_retry_after(oldest, now),
                               fields={"otp": ["too many codes sent to this phone; try again in an hour"]})


def _check_ip_quota(session: Session, client_ip: str | None, now: datetime) -> None:
    if not client_ip:
        return
    window = OtpChallenge.client_ip == client_ip, OtpChallenge.created_at > now - timedelta(hours=1)
    started = session.scalar(select(func.count()).select_from(OtpChallenge).where(*window))
    if int(started or 0) >= OTP_IP_HOURLY:
        oldest = session.scalar(select(func.min(OtpChallenge.created_at)).where(*window))
        raise RateLimitedError("too many requests from this address; try again in an hour",
                               retry_after=_retry_after(oldest, now),
                               fields={"otp": ["too many requests from this address; try again in an hour"]})


def issue_otp(session: Session, user: User, purpose: str, *, context: Mapping[str, Any] | None = None,
              phone: str | None = None, client_ip: str | None = None) -> tuple[OtpChallenge, str]:
    """A new code for ``purpose`` sent to the user's phone; earlier open codes of that purpose end.
    With ``client_ip`` (registration, reset: no password proved yet) the address's quota applies."""
    if purpose not in OTP_PURPOSES:
        raise ValueError(purpose)
    now = clock.now()
    phone = phone or user.phone or ""
    if not phone:
        raise InvalidDataError("no phone number on the account", fields={"phone": ["required"]})
    _check_ip_quota(session, client_ip, now)
    _check_phone_quota(session, phone, now)
    for old in session.scalars(select(OtpChallenge).where(
            OtpChallenge.user_id == user.id, OtpChallenge.purpose == purpose, OtpChallenge.consumed_at.is_(None))):
        old.consumed_at = now  # superseded
    code = f"{secrets.randbelow(10 ** 6):06d}"
    challenge = OtpChallenge(purpose=purpose, user_id=user.id, phone=phone, code_hash=_hash_code(code),
                             created_at=now, last_sent_at=now, expires_at=now + OTP_TTL, sends=1, attempts=0,
                             context=dict(context or {}), client_ip=client_ip)
    session.add(challenge)
    session.flush()
    return challenge, code


def open_challenge(session: Session, user: User, purpose: str) -> OtpChallenge | None:
    return session.scalar(select(OtpChallenge).where(
        OtpChallenge.user_id == user.id, OtpChallenge.purpose == purpose, OtpChallenge.consumed_at.is_(None))
        .order_by(OtpChallenge.id.desc()).limit(1))


def resend_otp(session: Session, user: User, purpose: str) -> tuple[OtpChallenge, str]:
    """A new code on the same challenge: at most OTP_MAX_SENDS sends, OTP_RESEND_INTERVAL apart.
    The old code stops working; the expiry starts again."""
    challenge = open_challenge(session, user, purpose)
    if challenge is None:
        raise ConflictError("no code is waiting; start again", fields={"otp": ["no code is waiting; start again"]})
    now = clock.now()
    if now - challenge.last_sent_at < OTP_RESEND_INTERVAL:
        raise RateLimitedError("wait a minute before asking for a new code",
                               retry_after=accounts.seconds_until(challenge.last_sent_at + OTP_RESEND_INTERVAL, now),
                               fields={"otp": ["wait a minute before asking for a new code"]})
    if challenge.sends >= OTP_MAX_SENDS:
        raise RateLimitedError("the code was sent too many times; start again later",
                               retry_after=accounts.seconds_until(challenge.expires_at, now),
                               fields={"otp": ["the code was sent too many times; start again later"]})
    _check_phone_quota(session, challenge.phone, now)
    code = f"{secrets.randbelow(10 ** 6):06d}"
    challenge.code_hash = _hash_code(code)
    challenge.sends += 1
    challenge.last_sent_at = now
    challenge.expires_at = now + OTP_TTL  # wrong tries stay counted: a resend does not revive a dead code
    session.flush()
    return challenge, code


def verify_otp(session: Session, user: User, purpose: str, code: str) -> OtpChallenge:
    """Consume the open code of ``purpose``. A wrong code counts on the code (dead after
    OTP_MAX_ATTEMPTS) and on the account, which is locked like after wrong passwords
    (accounts.MAX_FAILED_LOGINS, accounts.LOCKOUT): a new code does not give new guesses. The
    caller commits even on OtpError so the failure is kept; it is audited."""
    now = clock.now()
    if user.locked_until is not None and user.locked_until > now:
        raise OtpError("too many wrong codes; try again later",
                       fields={"otp": ["too many wrong codes; try again later"]})
    challenge = session.scalar(select(OtpChallenge).where(
        OtpChallenge.user_id == user.id, OtpChallenge.purpose == purpose, OtpChallenge.consumed_at.is_(None))
        .order_by(OtpChallenge.id.desc()).limit(1).with_for_update())
    if challenge is None or challenge.attempts >= OTP_MAX_ATTEMPTS:
        raise OtpError("no valid code is waiting; ask for a new code",
                       fields={"otp": ["no valid code is waiting; ask for a new code"]})
    if challenge.expires_at <= now:
        raise OtpError("the code has expired; ask for a new code",
                       fields={"otp": ["the code has expired; ask for a new code"]})
    if not _code_matches(challenge.code_hash, code or ""):
        challenge.attempts += 1
        user.failed_logins += 1
        data: dict[str, Any] = {"purpose": purpose, "attempts": challenge.attempts}
        if user.failed_logins >= accounts.MAX_FAILED_LOGINS:
            user.locked_until = now + accounts.LOCKOUT
            user.failed_logins = 0
            data["locked_until"] = user.locked_until.isoformat()
        record_event(session, action="otp_failed", actor=user.username, actor_id=user.id, data=data)
        session.flush()
        if challenge.attempts >= OTP_MAX_ATTEMPTS or "locked_until" in data:
            raise OtpError("too many wrong codes; ask for a new code",
                           fields={"otp": ["too many wrong codes; ask for a new code"]})
        raise OtpError("wrong code", fields={"otp": ["wrong code"]})
    challenge.consumed_at = now
    user.failed_logins = 0
    session.flush()
    return challenge


# --- accounts -------------------------------------------------------------------------------------

def find_citizen(session: Session, id_number: str) -> User | None:
    user = session.scalar(select(User).where(User.username == str(id_number or "").strip()))
    return user if user is not None and Role.CITIZEN.value in user.roles else None


def register(session: Session, body: Mapping[str, Any], *, client_ip: str | None = None) -> tuple[User, str]:
    """Create a citizen account waiting for its phone check; returns the user and the SMS code.

    Nothing is stored when a field is wrong. A number already registered and verified is refused;
    an unverified registration of the same number is replaced (nobody can hold a number hostage).
    """
    clean, errors = registration_fields(body, today=clock.now().date())
    if errors:
        raise InvalidDataError("the registration has errors", fields=errors)
    user = session.scalar(select(User).where(User.username == clean["id_number"]).with_for_update())
    if user is not None and (user.phone_verified_at is not None or Role.CITIZEN.value not in user.roles
                             or user.is_active):
        raise ConflictError("this ID number is already registered; log in or reset the password",
                            fields={"id_number": ["already registered; log in or reset the password"]})
    if user is None:
        user = User(username=clean["id_number"], id_number=clean["id_number"])
        user.role_rows = [UserRole(role=Role.CITIZEN.value)]
        session.add(user)
    user.full_name = clean["full_name"]
    user.date_of_birth = clean["date_of_birth"]
    user.phone = clean["phone"]
    user.email = clean["email"]
    user.password_hash = hash_password(clean["password"])
    user.is_active = False
    session.flush()
    record_event(session, action="citizen_registered", actor=user.username, actor_id=user.id)
    _challenge, code = issue_otp(session, user, "register", client_ip=client_ip)
    return user, code


def confirm_registration(session: Session, id_number: str, code: str) -> User:
    user = find_citizen(session, id_number)
    if user is None or user.phone_verified_at is not None:
        raise InvalidDataError("no registration waits for this number", fields={"id_number": ["not waiting"]})
    verify_otp(session, user, "register", code)
    user.phone_verified_at = clock.now()
    user.is_active = True
    record_event(session, action="phone_verified", actor=user.username, actor_id=user.id)
    session.flush()
    return user


def pending_citizen(session: Session, id_number: str) -> User:
    """The citizen whose registration waits for the SMS code (resend)."""
    user = find_citizen(session, id_number)
    if user is None or user.phone_verified_at is not None:
        raise InvalidDataError("no registration waits for this number", fields={"id_number": ["not waiting"]})
    return user


def request_password_reset(session: Session, id_number: str, *,
                           client_ip: str | None = None) -> tuple[User, str] | None:
    """A reset code for an active citizen; None (and the same answer to the caller) otherwise."""
    user = find_citizen(session, id_number)
    if user is None or not user.is_active:
        return None
    _challenge, code = issue_otp(session, user, "reset", client_ip=client_ip)
    return user, code


def reset_password(session: Session, id_number: str, code: str, password: str) -> User:
    if problems := password_errors(password or ""):
        raise InvalidDataError("the new password is too weak", fields={"password": problems})
    user = find_citizen(session, id_number)
    if user is None or not user.is_active:
        raise InvalidDataError("no valid code is waiting; ask for a new code",
                               fields={"otp": ["no valid code is waiting; ask for a new code"]})
    verify_otp(session, user, "reset", code)
    user.password_hash = hash_password(password)  # ends every session and token of the account
    user.failed_logins = 0
    user.locked_until = None
    record_event(session, action="password_reset", actor=user.username, actor_id=user.id)
    session.flush()
    return user


def otp_text(purpose: str, code: str, context: Mapping[str, Any] | None = None) -> str:
    """The SMS text, in Vietnamese without diacritics (a GSM-7 message of 160 characters; Unicode
    would cost two or three)."""
    context = context or {}
    delivery = str(context.get("delivery") or "")
    where = "nhan ket qua tai Bo phan Mot cua" if delivery == "counter" else "nhan qua buu dien: " + delivery[6:]
    what = {"register": "dang ky tai khoan", "login": "dang nhap", "reset": "dat lai mat khau",
            "consent": f"xac nhan nop ho so {context.get('procedure_name', '')} ({where}) do "
                       f"{context.get('assistant', '')} nhap ho"}[purpose]
    minutes = int(OTP_TTL.total_seconds() // 60)
    return _plain(f"motcua: ma xac thuc {what} la {code}, hieu luc {minutes} phut. "
                  "Khong cung cap ma nay cho nguoi khac.")


def _plain(text: str) -> str:
    """Vietnamese without diacritics (đ → d)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
