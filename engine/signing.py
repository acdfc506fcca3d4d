"""Digital signatures: a certificate authority, the leaders' signing certificates (PKCS#12), PAdES
signing with a visible signature block (pyHanko), and validation against the authority.

A deployment brings its own authority and certificates (``motcua signing trust`` and
``motcua signing import``); the demo
seed makes a demo authority and a certificate per leader with the cryptography package. The
PKCS#12 files are kept in the database encrypted with a passphrase derived from the secret key, so
a database dump alone cannot sign. (A province with USB tokens or a remote signing service plugs in
as another signer; the rest of motcua only sees :func:`sign_pdf` and :func:`validate_pdf`.)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import hmac
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import clock
from engine.calendar import to_vn
from engine.models import SigningCredential, User

# The signature block's font: FreeSerif (Debian fonts-freefont-ttf) has every Vietnamese letter and
# 1000 units per em. pyHanko 0.38 writes glyph widths in font units, so a 2048-unit font (DejaVu,
# Liberation) comes out with letters spread twice as wide (checked by rendering the stamp).
FONT_CANDIDATES = ("/usr/share/fonts/truetype/freefont/FreeSerif.ttf",)
CA_NAME = "motcua demo CA"
T = TypeVar("T")
CERT_YEARS = 3


class SigningError(ValueError):
    """No certificate to sign with, or a PDF that cannot be signed or read."""


def _passphrase(secret_key: str, subject: str) -> bytes:
    return hmac.new(secret_key.encode(), f"motcua-signing:{subject}".encode(), hashlib.sha256).hexdigest().encode()


def _name(common_name: str, *, title: str | None = None, organisation: str = "motcua") -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
             x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if title:
        parts.append(x509.NameAttribute(NameOID.TITLE, title))
    return x509.Name(parts)


def _fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def authority(session: Session) -> SigningCredential | None:
    return session.scalar(select(SigningCredential).where(SigningCredential.user_id.is_(None),
                                                          SigningCredential.is_authority.is_(True)))


def ensure_authority(session: Session, secret_key: str, *, name: str = CA_NAME) -> SigningCredential:
    """The deployment's certificate authority, made once (the demo's; production imports its own)."""
    existing = authority(session)
    if existing is not None:
        return existing
    key = ec.generate_private_key(ec.SECP256R1())
    now = clock.now().astimezone(UTC)
    subject = _name(name)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365 * 10))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    credential = _store(session, None, name, key, certificate, [], secret_key, is_authority=True)
    return credential


def _store(session: Session, user_id: int | None, subject: str, key: Any, certificate: x509.Certificate,
           chain: list[x509.Certificate], secret_key: str, *, is_authority: bool = False) -> SigningCredential:
    bundle = pkcs12.serialize_key_and_certificates(
        subject.encode(), key, certificate, chain or None,
        serialization.BestAvailableEncryption(_passphrase(secret_key, subject)))
    credential = SigningCredential(
        user_id=user_id, subject=subject, is_authority=is_authority,
        certificate=certificate.public_bytes(serialization.Encoding.PEM).decode(), pkcs12=bundle,
        fingerprint=_fingerprint(certificate), not_after=certificate.not_valid_after_utc,
        created_at=clock.now())
    session.add(credential)
    session.flush()
    return credential


def _open(credential: SigningCredential, secret_key: str) -> tuple[Any, x509.Certificate, list[x509.Certificate]]:
    if not credential.pkcs12:
        raise SigningError(f"{credential.subject}: only the certificate was imported; it cannot sign")
    key, certificate, chain = pkcs12.load_key_and_certificates(
        credential.pkcs12, _passphrase(secret_key, credential.subject))
    if key is None or certificate is None:
        raise SigningError(f"the signing bundle of {credential.subject} holds no key")
    return key, certificate, list(chain)


def issue_certificate(session: Session, user: User, secret_key: str) -> SigningCredential:
    """A signing certificate for a leader, issued by the deployment's authority (the demo seed)."""
    ca = ensure_authority(session, secret_key)
    ca_key, ca_cert, _ = _open(ca, secret_key)
    key = ec.generate_private_key(ec.SECP256R1())
    now = clock.now().astimezone(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(_name(user.full_name, title=user.title or None))
        .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365 * CERT_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _store(session, user.id, f"{user.username}", key, certificate, [ca_cert], secret_key)


def import_authority(session: Session, pem: bytes) -> SigningCredential:
    """Trust the province's certificate authority (its certificate only: it never signs here)."""
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise SigningError(f"not a PEM certificate: {exc}") from exc
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value \
        if any(e.oid == x509.BasicConstraints.oid for e in certificate.extensions) else None
    if constraints is None or not constraints.ca:
        raise SigningError("the certificate is not a certificate authority (BasicConstraints CA:TRUE)")
    for old in session.scalars(select(SigningCredential).where(SigningCredential.is_authority.is_(True))):
        old.is_authority = False  # kept for the signatures it validated; no longer trusted for new ones
    credential = SigningCredential(
        user_id=None, subject=certificate.subject.rfc4514_string()[:200], is_authority=True,
        certificate=certificate.public_bytes(serialization.Encoding.PEM).decode(), pkcs12=b"",
        fingerprint=_fingerprint(certificate), not_after=certificate.not_valid_after_utc, created_at=clock.now())
    session.add(credential)
    session.flush()
    return credential


def import_pkcs12(session: Session, user: User, data: bytes, passphrase: bytes | None,
                  secret_key: str) -> SigningCredential:
    """A leader's own certificate and key (a .p12 from the province's CA), kept re-encrypted."""
    try:
        key, certificate, chain = pkcs12.load_key_and_certificates(data, passphrase)
    except ValueError as exc:
        raise SigningError(f"cannot open the PKCS#12 file (wrong passphrase?): {exc}") from exc
    if key is None or certificate is None:
        raise SigningError("the PKCS#12 file holds no key and certificate")
    ca = authority(session)
    if ca is not None and certificate.issuer != x509.load_pem_x509_certificate(ca.certificate.encode()).subject:
        raise SigningError("the certificate was not issued by the trusted authority (motcua signing trust)")
    if certificate.not_valid_after_utc <= clock.now():
        raise SigningError("the certificate has expired")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        for_signing = usage.content_commitment
    except x509.ExtensionNotFound:
        for_signing = False
    if not for_signing:  # validators (pyHanko's by default) require non-repudiation for a signature
        raise SigningError("the certificate is not for signing documents (KeyUsage nonRepudiation missing)")
    return _store(session, user.id, user.username, key, certificate, list(chain), secret_key)


def credential_of(session: Session, user_id: int) -> SigningCredential | None:
    """The user's newest signing certificate still valid now."""
    return session.scalar(select(SigningCredential).where(
        SigningCredential.user_id == user_id, SigningCredential.not_after > clock.now())
        .order_by(SigningCredential.id.desc()).limit(1))


# --- signing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureBox:
    """Where the visible signature goes: page index (-1 = last) and a box in PDF points."""

    page: int
    box: tuple[int, int, int, int]


def _font_path() -> str:
    for path in FONT_CANDIDATES:
        if Path(path).is_file():
            return path
    raise SigningError("no font for the signature block: install fonts-freefont-ttf (make system)")


def _font_factory(size: int) -> Any:
    """pyHanko's glyph accumulator on the font read into memory (its own factory leaves the font
    file open)."""
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulator, GlyphAccumulatorFactory

    class MemoryFontFactory(GlyphAccumulatorFactory):
        def create_font_engine(self, writer: Any, obj_stream: Any = None) -> GlyphAccumulator:
            if obj_stream is None and writer.stream_xrefs and self.create_objstream_if_needed:
                obj_stream = writer.prepare_object_stream()
            return GlyphAccumulator(writer=writer, font_handle=io.BytesIO(_font_bytes()), font_size=self.font_size,
                                    obj_stream=obj_stream)

    return MemoryFontFactory(_font_path(), font_size=size)


@functools.cache
def _font_bytes() -> bytes:
    return Path(_font_path()).read_bytes()


def sign_pdf(pdf: bytes, credential: SigningCredential, secret_key: str, *, signer_name: str, signer_title: str,
             place: SignatureBox, reason: str = "Phê duyệt kết quả giải quyết hồ sơ") -> bytes:
    """A PAdES (B-B) signature of ``pdf`` with a visible block: name, title, time."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.text import TextBoxStyle
    from pyhanko.sign import fields, signers
    from pyhanko.sign.signers.pdf_cms import SimpleSigner
    from pyhanko.stamp import TextStampStyle
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    key, certificate, chain = _open(credential, secret_key)
    key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    from asn1crypto import keys as asn1_keys

    signer = SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER)),
        signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs(
            [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in chain]))
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    pages = int(writer.root["/Pages"]["/Count"])
    page = place.page if place.page >= 0 else pages + place.page
    style = TextStampStyle(
        stamp_text="Ký số bởi: %(signer)s\n%(title)s\nThời gian: %(time)s",
        text_box_style=TextBoxStyle(font=_font_factory(9), font_size=9),
        border_width=1, background=None)
    meta = signers.PdfSignatureMetadata(
        field_name="ChuKyLanhDao", md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason, name=signer_name, location="Việt Nam")
    output = io.BytesIO()
    pdf_signer = signers.PdfSigner(meta, signer=signer, stamp_style=style,
                                   new_field_spec=fields.SigFieldSpec("ChuKyLanhDao", on_page=page, box=place.box))
    params = {"signer": signer_name, "title": signer_title,
              "time": to_vn(clock.now()).strftime("%d/%m/%Y %H:%M:%S (giờ Việt Nam)")}
    outside_event_loop(lambda: pdf_signer.sign_pdf(writer, output=output, appearance_text_params=params))
    return output.getvalue()


def outside_event_loop(work: Callable[[], T]) -> T:
    """Run pyHanko's synchronous API, which starts its own asyncio loop: in a helper thread when
    this thread already runs one (an async web server, Playwright's sync API in tests)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


# --- validation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Validation:
    """What a reader needs to know about a signed PDF."""

    signed: bool
    intact: bool  # the signed bytes were not changed
    valid: bool  # the signature is mathematically correct
    trusted: bool  # the certificate chains to this deployment's authority
    signer: str
    signed_at: datetime | None
    covers_whole_file: bool  # nothing was added after the signature
    details: str  # pyHanko's full validation report (for auditors)

    @property
    def ok(self) -> bool:
        return self.signed and self.intact and self.valid and self.trusted and self.covers_whole_file


def validate_pdf(pdf: bytes, trust_roots_pem: list[str]) -> Validation:
    """Validate the (last) signature of ``pdf`` against the given authorities, offline."""
    from pyhanko.pdf_utils.misc import PdfReadError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    roots = [asn1_x509.Certificate.load(x509.load_pem_x509_certificate(pem.encode()).public_bytes(
        serialization.Encoding.DER)) for pem in trust_roots_pem]
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        signatures = reader.embedded_signatures
    except (PdfReadError, ValueError, KeyError, IndexError, TypeError) as exc:
        return Validation(False, False, False, False, "", None, False, f"not a readable PDF: {exc}")
    if not signatures:
        return Validation(False, False, False, False, "", None, False, "the PDF carries no signature")
    signature = signatures[-1]
    context = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
    try:
        status = outside_event_loop(lambda: validate_pdf_signature(signature, context))
    except Exception as exc:  # noqa: BLE001 - pyHanko raises many kinds for a broken file: all mean invalid
        return Validation(True, False, False, False, "", None, False, f"{type(exc).__name__}: {exc}")
    coverage = getattr(status, "coverage", None)
    whole = coverage is not None and coverage.name == "ENTIRE_FILE"
    signer = status.signing_cert.subject.native.get("common_name", "") if status.signing_cert else ""
    return Validation(True, bool(status.intact), bool(status.valid), bool(status.trusted), str(signer),
                      status.signer_reported_dt, whole, status.pretty_print_details())
