"""A province brings its own signing authority and the leaders' PKCS#12 files: `motcua signing
trust` and `motcua signing import`; a document signed with an imported certificate validates
against the imported authority only, and bad files are refused with the file named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from engine import documents, signing
from engine.config import Settings
from engine.db import make_engine, make_session_factory, transaction
from engine.migrate import upgrade
from engine.models import SigningCredential, User
from scripts.cli import main

PASSPHRASE = b"mat-khau-cua-tinh"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"), x509.NameAttribute(NameOID.COMMON_NAME,
                                                                                          common_name)])


def _certificate(subject: str, key, issuer_name: x509.Name, issuer_key, *, ca: bool) -> x509.Certificate:
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=not ca, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(issuer_key, hashes.SHA256()))


@pytest.fixture
def province(tmp_path):
    """The province's CA (PEM) and a leader's .p12 issued by it; a stranger's .p12 from another CA."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("CA tỉnh Hà Tĩnh", ca_key, _name("CA tỉnh Hà Tĩnh"), ca_key, ca=True)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    leader_key = ec.generate_private_key(ec.SECP256R1())
    leader = _certificate("Trần Văn Tỉnh", leader_key, ca.subject, ca_key, ca=False)
    (tmp_path / "leader.p12").write_bytes(pkcs12.serialize_key_and_certificates(
        b"leader", leader_key, leader, [ca], serialization.BestAvailableEncryption(PASSPHRASE)))
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _certificate("Người lạ", other_key, _name("CA khác"), other_key, ca=False)
    (tmp_path / "other.p12").write_bytes(pkcs12.serialize_key_and_certificates(
        b"other", other_key, other, None, serialization.BestAvailableEncryption(PASSPHRASE)))
    url = f"sqlite:///{tmp_path / 'sign.db'}"
    settings = Settings.from_env({}, env="test", database_url=url)
    upgrade(settings)
    factory = make_session_factory(make_engine(settings))
    with transaction(factory) as session:
        session.add(User(username="leader.tinh", full_name="Trần Văn Tỉnh", password_hash="x", title="Chủ tịch"))
    return tmp_path, {"MOTCUA_DATABASE_URL": url, "MOTCUA_ENV": "test"}, factory, settings


def test_trusted_authority_and_imported_certificate_sign_and_validate(province):
    folder, env, factory, settings = province
    runner = CliRunner()
    trusted = runner.invoke(main, ["signing", "trust", str(folder / "ca.pem")], env=env)
    assert trusted.exit_code == 0, trusted.output
    imported = runner.invoke(main, ["signing", "import", "leader.tinh", str(folder / "leader.p12")],
                             env=env, input=PASSPHRASE.decode() + "\n")
    assert imported.exit_code == 0, imported.output
    with transaction(factory) as session:
        user = session.scalar(select(User).where(User.username == "leader.tinh"))
        credential = signing.credential_of(session, user.id)
        pdf, slot = documents.render_pdf_with_slot("result", {
            "unit": {"name": "UBND xã An Hòa Thịnh"}, "leader": {"name": user.full_name, "title": "Chủ tịch"},
            "dossier": {"code": "000.20.42.H42-261119-0009", "applicant_name": "Phạm Thị Dung",
                        "form": {"child_full_name": "Nguyễn Minh An"}}}, procedure="birth_registration")
        signed = signing.sign_pdf(pdf, credential, settings.secret_key, signer_name=user.full_name,
                                  signer_title="Chủ tịch", place=slot)
        roots = [c.certificate for c in session.scalars(select(SigningCredential).where(
            SigningCredential.is_authority.is_(True)))]
    assert len(roots) == 1, roots
    result = signing.validate_pdf(signed, roots)
    assert result.ok, result.details
    assert result.signer == "Trần Văn Tỉnh"
    assert not signing.validate_pdf(signed, []).trusted  # trusted only through the imported authority


def test_bad_files_are_refused_with_the_file_named(province):
    folder, env, factory, _settings = province
    runner = CliRunner()
    assert runner.invoke(main, ["signing", "trust", str(folder / "ca.pem")], env=env).exit_code == 0
    wrong = runner.invoke(main, ["signing", "import", "leader.tinh", str(folder / "leader.p12")],
                          env=env, input="sai\n")
    assert wrong.exit_code == 1
    assert f"{folder / 'leader.p12'}: cannot open the PKCS#12 file" in wrong.output
    foreign = runner.invoke(main, ["signing", "import", "leader.tinh", str(folder / "other.p12")],
                            env=env, input=PASSPHRASE.decode() + "\n")
    assert foreign.exit_code == 1
    assert "not issued by the trusted authority" in foreign.output
    not_ca = runner.invoke(main, ["signing", "trust", str(folder / "leader.p12")], env=env)
    assert not_ca.exit_code == 1
    assert "not a PEM certificate" in not_ca.output
    with transaction(factory) as session:
        assert session.scalar(select(SigningCredential).where(SigningCredential.user_id.is_not(None))) is None
