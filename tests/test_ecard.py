"""E-SSC QR (sscard profile, reference part C last profile row): codec, issuer, verifier, CLI."""

from __future__ import annotations

import base64
import contextlib
import json
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from sscard.applets.ecard import EcardVerifier, TrustStore, read_qr_image, route_qr
from sscard.cards.ecard_qr import (
    TOKEN_LENGTH,
    EcardDecodeError,
    EcardToken,
    TokenBadEncoding,
    TokenBadLength,
    TokenBadPrefix,
    TokenBadVersion,
    TokenRetiredVersion,
    TokenTruncated,
    holder_reference,
)
from sscard.cli.ecard import command
from sscard.crypto import PurePythonSm2, default_backend, hmac_sm3, sm3
from sscard.errors import ConfigError, DependencyMissing
from sscard.services.replay_cache import ReplayCache
from sscard.simulators.ecard_issuer import (
    EcardIssuer,
    IssuerKey,
    write_qr_png,
    write_trust_store,
)
from sscard.simulators.profile import CardProfile, new_card

T0 = 1_800_000_000
CARD = bytes.fromhex("330100D156000005011BA293AA4B9E55")  # reference §C1.4 sample
SSN = "11010519491231002X"  # GB 11643 example


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def key() -> IssuerKey:
    return IssuerKey.generate()


@pytest.fixture
def issuer(key: IssuerKey) -> EcardIssuer:
    return EcardIssuer(key, clock=Clock(T0))


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def verifier(key: IssuerKey, clock: Clock, tmp_path: Path) -> EcardVerifier:
    trust = TrustStore({key.key_id: key.public_key})
    return EcardVerifier(trust, ReplayCache(tmp_path / "replay.sqlite3"), clock=clock)


# --------------------------------------------------------------------------- codec


def test_payload_layout_matches_profile(issuer: EcardIssuer, key: IssuerKey) -> None:
    nonce = bytes.fromhex("0102030405060708")
    text = issuer.issue(CARD, SSN, issued_at=T0, nonce=nonce).encode()
    assert text.startswith("SSC1:") and "=" not in text and len(text) == 5 + 152
    raw = base64.urlsafe_b64decode(text[5:])
    assert len(raw) == TOKEN_LENGTH == 114
    assert raw[0] == 0x02
    assert raw[1:5] == key.key_id == sm3(key.public_key)[:4]
    assert raw[5:21] == CARD
    # Version 02: HMAC-SM3 under the issuer's holder secret, never the bare SM3 of v01.
    assert raw[21:37] == hmac_sm3(key.holder_secret, SSN.encode("ascii"))[:16]
    assert sm3(SSN.encode("ascii"))[:16] not in raw
    assert raw[37:41] == T0.to_bytes(4, "big")
    assert raw[41] == 0x3C
    assert raw[42:50] == nonce
    # The signature covers bytes 0-49, SM2/SM3 with the default ID, checked by the other backend.
    assert PurePythonSm2().verify(key.public_key, raw[:50], raw[50:], b"1234567812345678")


def test_holder_reference_normalises_check_character_and_is_keyed() -> None:
    secret = bytes(range(32))
    assert holder_reference(secret, "11010519491231002x ") == holder_reference(secret, SSN)
    assert holder_reference(bytes(32), SSN) != holder_reference(secret, SSN)
    with pytest.raises(ValueError):
        holder_reference(b"short", SSN)


@pytest.mark.parametrize(
    ("key", "data", "mac"),
    [
        # GM/T 0042-2015 Appendix D.3, as in openssl/openssl
        # test/recipes/30-test_evp_data/evpmac_sm3.txt (and libxcrypt's alg-sm3-hmac test).
        (
            bytes(range(1, 33)),
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq" * 2,
            "ca05e144ed05d1857840d1f318a4a8669e559fc8391f414485bfdf7bb408963a",
        ),
        (
            bytes(range(1, 38)),
            b"\xcd" * 50,
            "220bf579ded555393f0159f66c99877822a3ecf610d1552154b41d44b94db3ae",
        ),
        (
            b"\x0b" * 32,
            b"Hi There",
            "c0ba18c68b90c88bc07de794bfc7d2c8d19ec31ed8773bc2b390c9604e0be11e",
        ),
        (
            b"Jefe Jeferson Jr",
            b"what do ya want for nothing?",
            "ce791a34c59adef472997a249600f3f244d59e875be04055ba2ae12fc845e78c",
        ),
        # jht5945/hmac-sm3 README (an independent Rust implementation).
        (
            b"TestSecret",
            b"Hello World",
            "9d91da552268ddf11b9f69662773a66c6375b250336dfb9293e7e2611c36d79f",
        ),
    ],
)
def test_hmac_sm3_known_answers(key: bytes, data: bytes, mac: str) -> None:
    assert hmac_sm3(key, data).hex() == mac


tokens = st.builds(
    EcardToken,
    issuer_key_id=st.binary(min_size=4, max_size=4),
    card_id_code=st.binary(min_size=16, max_size=16),
    holder_ref=st.binary(min_size=16, max_size=16),
    issued_at=st.integers(0, 0xFFFFFFFF),
    validity=st.integers(0, 255),
    nonce=st.binary(min_size=8, max_size=8),
    signature=st.binary(min_size=64, max_size=64),
)


@given(tokens)
def test_codec_round_trip(token: EcardToken) -> None:
    assert EcardToken.decode(token.encode()) == token
    assert EcardToken.decode(token.encode().encode("ascii") + b"\r\n") == token


@given(st.one_of(st.text(), st.binary()))
def test_decode_arbitrary_input_raises_only_typed_errors(data: str | bytes) -> None:
    try:
        EcardToken.decode(data)
    except EcardDecodeError as exc:
        assert exc.reason and exc.message_en and exc.message_zh
        assert exc.reason in {
            "truncated",
            "bad_encoding",
            "bad_prefix",
            "bad_version",
            "retired_version",
            "bad_length",
        }


@given(st.from_regex(r"SSC1:[A-Za-z0-9_=+/-]{0,200}", fullmatch=True))
def test_decode_prefixed_garbage_raises_only_typed_errors(text: str) -> None:
    with contextlib.suppress(EcardDecodeError):
        EcardToken.decode(text)


def _raw(issuer: EcardIssuer) -> bytes:
    return issuer.issue(CARD, SSN).to_bytes()


def _text(raw: bytes) -> str:
    return "SSC1:" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("make", "error", "reason"),
    [
        (lambda raw: _text(raw)[:-4], TokenTruncated, "truncated"),
        (lambda raw: _text(raw)[:-1], TokenTruncated, "truncated"),
        (lambda raw: "SSC1:", TokenTruncated, "truncated"),
        (lambda raw: _text(raw[:50]), TokenTruncated, "truncated"),
        (lambda raw: _text(raw).replace("SSC1:", "SSC1:!"), TokenBadEncoding, "bad_encoding"),
        (lambda raw: _text(raw) + "A", TokenBadEncoding, "bad_encoding"),  # 153 chars: 4n+1
        (lambda raw: _text(raw)[:40] + "+/" + _text(raw)[42:], TokenBadEncoding, "bad_encoding"),
        (lambda raw: "SSC1:" + "ＡＢＣＤ", TokenBadEncoding, "bad_encoding"),
        (lambda raw: _text(raw).replace("SSC1:", "SSC2:"), TokenBadPrefix, "bad_prefix"),
        (lambda raw: _text(raw).lower(), TokenBadPrefix, "bad_prefix"),
        (lambda raw: "https://example.invalid/qr", TokenBadPrefix, "bad_prefix"),
        (lambda raw: _text(b"\x03" + raw[1:]), TokenBadVersion, "bad_version"),
        (lambda raw: _text(b"\x01" + raw[1:]), TokenRetiredVersion, "retired_version"),
        (lambda raw: _text(b"\x00"), TokenBadVersion, "bad_version"),
        (lambda raw: _text(raw + b"\x00\x00\x00"), TokenBadLength, "bad_length"),
    ],
)
def test_bad_qr_decode_and_verify(
    issuer: EcardIssuer,
    verifier: EcardVerifier,
    make,
    error,
    reason,  # type: ignore[no-untyped-def]
) -> None:
    text = make(_raw(issuer))
    with pytest.raises(error) as info:
        EcardToken.decode(text)
    assert info.value.reason == reason
    result = verifier.verify(text)
    assert (result.outcome, result.reason) == ("rejected", reason)
    assert result.card_id_code is None and result.holder_ref is None
    assert result.message_en and result.message_zh and " / " in result.bilingual()


def test_decode_non_ascii_bytes() -> None:
    with pytest.raises(TokenBadEncoding):
        EcardToken.decode("SSC1:张三".encode())


# --------------------------------------------------------------------------- verifier


@pytest.mark.parametrize("province", ["shanghai", "jiangsu", "zhejiang", "anhui"])
def test_round_trip_issue_verify_each_province(
    province: str, issuer: EcardIssuer, verifier: EcardVerifier
) -> None:
    card = new_card(province, seed=7)
    result = verifier.verify(issuer.issue_for(card).encode())
    assert result.accepted and result.reason == "ok"
    assert result.card_id_code == card.ssse.ef05.card_id.encode()
    # Only the issuer, with its holder secret, ties the reference to the holder.
    assert result.holder_ref == issuer.key.holder_reference(card.ssse.ef06.ssn)
    assert result.holder_ref != issuer.key.holder_reference(SSN)
    ref = result.holder_ref.hex().upper()
    for redact in (True, False):
        shown = json.dumps(result.to_dict(redact), ensure_ascii=False) + repr(result)
        assert card.ssse.ef06.ssn not in shown and card.ssse.ef06.name not in shown
        assert ref not in shown and ref[:4] in shown  # never whole, not even unredacted
    assert card.ssse.ef05.card_id.hex not in json.dumps(result.to_dict())
    assert result.to_dict(redact=False)["card_id_code"] == card.ssse.ef05.card_id.hex
    assert result.to_dict()["region"] == card.ssse.ef05.card_id.region


def test_second_scan_is_replayed(issuer: EcardIssuer, verifier: EcardVerifier) -> None:
    text = issuer.issue(CARD, SSN).encode()
    assert verifier.verify(text).reason == "ok"
    second = verifier.verify(text)
    assert (second.outcome, second.reason) == ("rejected", "replayed")
    assert second.card_id_code is None
    # A different code for the same card is a new nonce: accepted.
    assert verifier.verify(issuer.issue(CARD, SSN).encode()).reason == "ok"


@pytest.mark.parametrize(
    ("offset", "reason"),
    [
        (-6, "not_yet_valid"),
        (-5, "ok"),
        (0, "ok"),
        (65, "ok"),
        (65.5, "expired"),
        (66, "expired"),
        (3600, "expired"),
    ],
)
def test_time_window_and_skew_boundaries(
    issuer: EcardIssuer, verifier: EcardVerifier, clock: Clock, offset: float, reason: str
) -> None:
    text = issuer.issue(CARD, SSN, issued_at=T0).encode()
    clock.now = T0 + offset
    assert verifier.verify(text).reason == reason


def test_zero_skew_and_validity_capped(
    key: IssuerKey, issuer: EcardIssuer, clock: Clock, tmp_path: Path
) -> None:
    strict = EcardVerifier(
        TrustStore({key.key_id: key.public_key}),
        ReplayCache(tmp_path / "r.sqlite3"),
        clock=clock,
        skew=0,
    )
    clock.now = T0 + 60
    assert strict.verify(issuer.issue(CARD, SSN, issued_at=T0).encode()).reason == "ok"
    clock.now = T0 + 61
    assert strict.verify(issuer.issue(CARD, SSN, issued_at=T0).encode()).reason == "expired"
    # A token claiming 255 s is still held to the verifier's 60 s.
    long_lived = EcardIssuer(key, validity=255).issue(CARD, SSN, issued_at=T0)
    assert strict.verify(long_lived.encode()).reason == "expired"


def test_expired_token_is_expired_not_replayed(
    issuer: EcardIssuer, verifier: EcardVerifier, clock: Clock
) -> None:
    text = issuer.issue(CARD, SSN, issued_at=T0).encode()
    assert verifier.verify(text).reason == "ok"
    assert len(verifier.replay) == 1
    clock.now = T0 + 120
    assert verifier.verify(text).reason == "expired"
    # The stale entry is dropped on the next write.
    assert verifier.verify(issuer.issue(CARD, SSN, issued_at=T0 + 120).encode()).reason == "ok"
    assert len(verifier.replay) == 1


def test_unknown_issuer(issuer: EcardIssuer, clock: Clock, tmp_path: Path) -> None:
    other = IssuerKey.generate()
    verifier = EcardVerifier(
        TrustStore({other.key_id: other.public_key}), ReplayCache(tmp_path / "r"), clock=clock
    )
    result = verifier.verify(issuer.issue(CARD, SSN).encode())
    assert (result.outcome, result.reason) == ("rejected", "unknown_issuer")


def test_wrong_key_under_trusted_id_is_bad_signature(
    key: IssuerKey, issuer: EcardIssuer, clock: Clock, tmp_path: Path
) -> None:
    other = IssuerKey.generate()
    forged = EcardIssuer(
        IssuerKey(key.key_id, other.private_key, other.public_key, key.holder_secret)
    )
    verifier = EcardVerifier(
        TrustStore({key.key_id: key.public_key}), ReplayCache(tmp_path / "r"), clock=clock
    )
    assert verifier.verify(forged.issue(CARD, SSN, issued_at=T0).encode()).reason == "bad_signature"


@pytest.mark.parametrize("position", [5, 20, 21, 36, 37, 40, 41, 42, 49, 50, 81, 82, 113])
def test_tampered_byte_is_bad_signature(
    issuer: EcardIssuer, verifier: EcardVerifier, position: int
) -> None:
    raw = bytearray(issuer.issue(CARD, SSN).to_bytes())
    raw[position] ^= 0x01
    assert verifier.verify(_text(bytes(raw))).reason == "bad_signature"


def test_rejected_code_does_not_burn_the_nonce(
    issuer: EcardIssuer, verifier: EcardVerifier
) -> None:
    raw = issuer.issue(CARD, SSN).to_bytes()
    forged = bytearray(raw)
    forged[10] ^= 0xFF  # same issuer and nonce, different card
    assert verifier.verify(_text(bytes(forged))).reason == "bad_signature"
    assert verifier.verify(_text(raw)).reason == "ok"


def test_pure_python_backend_verifies_too(
    key: IssuerKey, issuer: EcardIssuer, clock: Clock, tmp_path: Path
) -> None:
    verifier = EcardVerifier(
        TrustStore({key.key_id: key.public_key}),
        ReplayCache(tmp_path / "r"),
        clock=clock,
        backend=PurePythonSm2(),
    )
    assert verifier.verify(issuer.issue(CARD, SSN).encode()).reason == "ok"


@settings(max_examples=60)
@given(st.one_of(st.text(), st.binary()))
def test_verify_never_raises(data: str | bytes) -> None:
    verifier = EcardVerifier(TrustStore({}), ReplayCache(":memory:"), clock=Clock(T0))
    result = route_qr(data, verifier)
    assert result.outcome in {"rejected", "relay"} and result.message_zh


def test_router(issuer: EcardIssuer, verifier: EcardVerifier) -> None:
    voucher = route_qr("https://fuwu-test.nhsa.gov.cn/qr/abc", verifier)
    assert (voucher.outcome, voucher.reason) == ("relay", "not_ecard")
    assert "EcQuery" in voucher.message_en
    assert route_qr(" " + issuer.issue(CARD, SSN).encode() + "\n", verifier).accepted
    assert route_qr(b"SSC1:AAAA", verifier).reason == "bad_version"


# --------------------------------------------------------------------------- key files


def test_issuer_key_file(key: IssuerKey, tmp_path: Path) -> None:
    path = tmp_path / "issuer.json"
    key.save(path)
    doc = json.loads(path.read_text())
    assert doc["schema"] == "sscard-ecard-issuer/2" and doc["test_key"] is True
    assert "TEST KEY" in doc["warning"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert IssuerKey.load(path) == key
    assert key.private_key.hex() not in repr(key).lower()
    assert key.holder_secret.hex() not in repr(key).lower()
    # Loaded as a trust store, only the public half is used.
    assert TrustStore.load(path).keys == {key.key_id: key.public_key}
    trust = tmp_path / "trust.json"
    write_trust_store(trust, [key, IssuerKey.generate()])
    store = TrustStore.load(trust)
    assert len(store.keys) == 2 and store.public_key(key.key_id) == key.public_key
    assert "private_key" not in trust.read_text() and "holder_secret" not in trust.read_text()
    assert key.holder_secret.hex().upper() not in trust.read_text()


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"schema": "other/1"}',
        '{"schema": "sscard-ecard-trust/1", "issuers": {}}',
        '{"schema": "sscard-ecard-trust/1", "issuers": [{"key_id": "zz", "public_key": ""}]}',
        '{"schema": "sscard-ecard-trust/1", "issuers": [{"key_id": "01020304"}]}',
    ],
)
def test_bad_trust_store(tmp_path: Path, content: str) -> None:
    path = tmp_path / "trust.json"
    path.write_text(content)
    with pytest.raises(ConfigError):
        TrustStore.load(path)


def test_issuer_key_with_mismatched_public_key(key: IssuerKey, tmp_path: Path) -> None:
    doc = key.to_json()
    doc["public_key"] = IssuerKey.generate().public_key.hex()
    path = tmp_path / "k.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError):
        IssuerKey.load(path)
    with pytest.raises(ConfigError):
        TrustStore.load(tmp_path / "missing.json")


# --------------------------------------------------------------------------- PNG


def test_png_written_and_read_back(
    issuer: EcardIssuer, verifier: EcardVerifier, tmp_path: Path
) -> None:
    payload = issuer.issue(CARD, SSN).encode()
    png = tmp_path / "qr.png"
    write_qr_png(payload, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pytest.importorskip("zxingcpp")
    pytest.importorskip("PIL")
    assert read_qr_image(png) == [payload]
    assert verifier.verify(read_qr_image(png)[0]).accepted


def test_missing_decoder_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "zxingcpp", None)
    with pytest.raises(DependencyMissing) as info:
        read_qr_image(tmp_path / "x.png")
    assert "pip install" in info.value.message_en and "zxing-cpp" in info.value.message_zh


def test_missing_encoder_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "segno", None)
    with pytest.raises(DependencyMissing) as info:
        write_qr_png("SSC1:", tmp_path / "x.png")
    assert "segno" in info.value.message_en


def test_unreadable_image_is_config_error(tmp_path: Path) -> None:
    pytest.importorskip("zxingcpp")
    pytest.importorskip("PIL")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ConfigError):
        read_qr_image(bad)


# --------------------------------------------------------------------------- CLI


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(command, list(args))
    return result.exit_code, result.output


def test_cli_issue_and_verify(tmp_path: Path) -> None:
    card = new_card("anhui", seed=3)
    card.save(tmp_path / "card.json")
    key_file, trust = tmp_path / "issuer.json", tmp_path / "trust.json"
    png = tmp_path / "qr.png"
    common = ["--replay-db", str(tmp_path / "replay.db"), "--audit-db", str(tmp_path / "a.db")]

    code, out = _cli(
        "issue", str(tmp_path / "card.json"), "--issuer-key", str(key_file),
        "--png", str(png), "--trust-out", str(trust),
    )  # fmt: skip
    assert code == 0, out
    payload = out.strip().splitlines()[-1]
    assert payload.startswith("SSC1:") and key_file.exists() and png.exists()

    code, out = _cli("verify", payload, "--trust", str(trust), "--terminal-id", "gate-1", *common)
    card_id = card.ssse.ef05.card_id.hex
    assert code == 0 and "ACCEPTED [ok]" in out and card_id not in out
    assert f"{card_id[:6]}{'*' * 22}{card_id[-4:]}" in out  # masked by default
    code, out = _cli("verify", payload, "--trust", str(trust), "--json", *common)
    assert code == 1 and json.loads(out)["reason"] == "replayed"
    code, out = _cli("verify", "otherqr", "--trust", str(trust), *common)
    assert code == 1 and "not_ecard" in out  # relay: exit status 1 (module docstring)
    code, out = _cli("verify", "SSC1:abcde", "--trust", str(key_file), *common)
    assert code == 1 and "[bad_encoding]" in out  # 4n+1 base64 characters cannot be decoded
    if _decoder_installed():
        fresh = tmp_path / "fresh.png"
        _cli(
            "issue", str(tmp_path / "card.json"), "--issuer-key", str(key_file), "--png", str(fresh)
        )
        code, out = _cli("verify", "--image", str(fresh), "--trust", str(trust), *common)
        assert code == 0, out
    code, out = _cli("verify", "--trust", str(trust), *common)
    assert code == 2  # neither PAYLOAD nor --image

    # No full SSN or name anywhere: output, audit log, replay cache, key files.
    ssn, name = card.ssse.ef06.ssn, card.ssse.ef06.full_name
    blobs = [out] + [p.read_bytes() for p in tmp_path.iterdir() if p.name != "card.json"]
    for blob in blobs:
        data = blob if isinstance(blob, bytes) else blob.encode()
        assert ssn.encode() not in data
        assert name.encode("utf-8") not in data and name.encode("gbk") not in data


def _decoder_installed() -> bool:
    try:
        import PIL  # noqa: F401
        import zxingcpp  # noqa: F401
    except ImportError:
        return False
    return True


def test_cli_bad_card_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "card.json"
    bad.write_text("{}")
    code, out = _cli("issue", str(bad), "--issuer-key", str(tmp_path / "k.json"))
    assert code == 2 and out.startswith("error: ") and "Traceback" not in out
    assert not (tmp_path / "k.json").exists()


def test_cli_rejects_id_number_as_terminal_id(tmp_path: Path, key: IssuerKey) -> None:
    key.save(tmp_path / "k.json")
    code, out = _cli(
        "verify", "SSC1:AAAA", "--trust", str(tmp_path / "k.json"),
        "--terminal-id", SSN[:17] + "1", "--replay-db", str(tmp_path / "r.db"),
        "--audit-db", str(tmp_path / "a.db"),
    )  # fmt: skip
    assert code == 1 and "error:" in out


def test_card_profile_loads_for_issue_for(tmp_path: Path, issuer: EcardIssuer) -> None:
    new_card("jiangsu", seed=11).save(tmp_path / "c.json")
    card = CardProfile.load(tmp_path / "c.json")
    token = issuer.issue_for(card)
    assert token.card_id_code == card.ssse.ef05.card_id.encode()
    assert token.holder_ref == issuer.key.holder_reference(card.ssse.ef06.ssn)
    assert default_backend().verify(issuer.key.public_key, token.signed_bytes(), token.signature)


def test_cli_missing_decoder_and_stdin(
    tmp_path: Path, key: IssuerKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    key.save(tmp_path / "k.json")
    png = tmp_path / "qr.png"
    write_qr_png("SSC1:AAAA", png)
    common = ["--trust", str(tmp_path / "k.json"), "--replay-db", str(tmp_path / "r.db")]
    common += ["--no-audit"]
    result = CliRunner().invoke(
        command, ["verify", "-", *common], input=EcardIssuer(key).issue(CARD, SSN).encode() + "\n"
    )
    assert result.exit_code == 0 and "ACCEPTED" in result.output
    assert not (tmp_path / "a.db").exists()
    monkeypatch.setitem(sys.modules, "zxingcpp", None)
    code, out = _cli("verify", "--image", str(png), *common)
    assert code == 6 and "pip install 'zxing-cpp" in out and "Traceback" not in out


def test_cli_issue_keeps_its_private_key_out_of_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No TEST private key dropped into a checkout; the key file is 0600."""
    new_card("anhui", seed=3).save(tmp_path / "card.json")
    cwd, state = tmp_path / "checkout", tmp_path / "state"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("SSCARD_STATE_DIR", str(state))
    monkeypatch.delenv("SSCARD_ECARD_ISSUER_KEY", raising=False)
    code, out = _cli("issue", str(tmp_path / "card.json"))
    assert code == 0, out
    assert list(cwd.iterdir()) == []
    key = state / "ecard-issuer.json"
    assert key.stat().st_mode & 0o777 == 0o600
    assert state.stat().st_mode & 0o077 == 0
    assert json.loads(key.read_text())["test_key"] is True


# --------------------------------------------------------------------------- version 01 (retired)


def _v01_payload(key: IssuerKey, card_id: bytes, ssn: str, issued_at: int) -> tuple[str, bytes]:
    """A correctly signed payload of the retired version 01 (SM3 of the SSN) and its digest."""
    digest = sm3(ssn.encode("ascii"))[:16]
    body = bytes([0x01]) + key.key_id + card_id + digest + issued_at.to_bytes(4, "big")
    body += bytes([60]) + bytes(8)
    signature = default_backend().sign(key.private_key, body)
    return _text(body + signature), digest


def test_version_01_is_refused_and_its_digest_never_shown(
    key: IssuerKey, clock: Clock, tmp_path: Path
) -> None:
    """V01 carried SM3(SSN)[0:16], brute-forced in seconds; verifiers refuse it."""
    card = new_card("anhui", seed=5)
    payload, digest = _v01_payload(key, card.ssse.ef05.card_id.encode(), card.ssse.ef06.ssn, T0)
    trust = TrustStore({key.key_id: key.public_key})
    verifier = EcardVerifier(trust, ReplayCache(tmp_path / "r"), clock=clock)
    result = verifier.verify(payload)
    assert (result.outcome, result.reason) == ("rejected", "retired_version")
    assert result.token is None and result.holder_ref is None
    assert "01" in result.message_en and "01" in result.message_zh
    assert len(verifier.replay) == 0  # refused before the nonce was looked at
    # Through the CLI (text and JSON, audit row): the digest appears nowhere.
    key.save(tmp_path / "k.json")
    common = ["--trust", str(tmp_path / "k.json"), "--replay-db", str(tmp_path / "r.db")]
    common += ["--audit-db", str(tmp_path / "a.db")]
    for extra in ([], ["--json"], ["--no-redact"]):
        code, out = _cli("verify", payload, *common, *extra)
        assert code == 1 and "retired_version" in out
        assert digest.hex() not in out.lower()
    assert digest.hex().upper().encode() not in (tmp_path / "a.db").read_bytes()


def test_version_01_issuer_key_is_a_trust_store_but_cannot_issue(
    key: IssuerKey, tmp_path: Path
) -> None:
    doc = {k: v for k, v in key.to_json().items() if k != "holder_secret"}
    doc["schema"] = "sscard-ecard-issuer/1"
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    assert TrustStore.load(path).keys == {key.key_id: key.public_key}
    with pytest.raises(ConfigError) as info:
        IssuerKey.load(path)
    assert "holder secret" in info.value.message_en and "02" in info.value.message_zh
    code, out = _cli("issue", str(_card_file(tmp_path)), "--issuer-key", str(path))
    assert code == 2 and out.startswith("error: ") and "Traceback" not in out


def _card_file(tmp_path: Path) -> Path:
    path = tmp_path / "card.json"
    new_card("zhejiang", seed=2).save(path)
    return path


def test_a_verifier_cannot_test_candidate_ssns(
    issuer: EcardIssuer, verifier: EcardVerifier
) -> None:
    """The brute-force attack on v01 no longer works: with the county and birth year known, no
    SSN candidate's SM3 (or SM3 of anything else public) equals the holder reference."""
    card = new_card("anhui", seed=9)
    ssn = card.ssse.ef06.ssn
    result = verifier.verify(issuer.issue_for(card).encode())
    assert result.accepted and result.holder_ref is not None
    public = [ssn, ssn.lower(), ssn[:17], card.ssse.ef05.card_id.hex]
    for text in public:
        assert sm3(text.encode())[:16] != result.holder_ref
    # Another issuer's reference for the same holder differs: no cross-issuer linking.
    assert IssuerKey.generate().holder_reference(ssn) != result.holder_ref
