"""Personal-data encryption, blind indexes and masking."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from ticketing.crypto import (
    DecryptionFailed,
    KeyConfigError,
    Keyring,
    UnknownKeyId,
    mask_id_number,
    mask_name,
    mask_phone,
    normalize_identifier,
)
from ticketing.errors import TicketingError

K1 = base64.b64encode(bytes(range(32))).decode()
K2 = base64.b64encode(bytes(range(32, 64))).decode()
INDEX = base64.b64encode(bytes(range(64, 96))).decode()


@pytest.fixture
def ring() -> Keyring:
    return Keyring.from_settings(SecretStr(f"k1:{K1}"), SecretStr(INDEX))


@pytest.fixture
def rotated() -> Keyring:
    return Keyring.from_settings(SecretStr(f"k1:{K1},k2:{K2}"), SecretStr(INDEX))


def test_roundtrip_text_with_key_id_prefix(ring: Keyring) -> None:
    token = ring.encrypt("张三", associated_data="traveler:1:name")
    assert token.startswith("k1:")
    assert "张三" not in token
    assert ring.decrypt_text(token, associated_data="traveler:1:name") == "张三"


def test_same_plaintext_encrypts_differently_each_time(ring: Keyring) -> None:
    a = ring.encrypt(b"110101199003071234", associated_data="t:1")
    b = ring.encrypt(b"110101199003071234", associated_data="t:1")
    assert a != b


def test_ciphertext_moved_to_another_row_does_not_decrypt(ring: Keyring) -> None:
    token = ring.encrypt("110101199003071234", associated_data="traveler:1:id_number")
    with pytest.raises(DecryptionFailed) as info:
        ring.decrypt(token, associated_data="traveler:2:id_number")
    assert info.value.code == "decryption_failed"
    assert isinstance(info.value, TicketingError)


def test_tampered_ciphertext_is_refused(ring: Keyring) -> None:
    token = ring.encrypt("secret", associated_data="a")
    key_id, payload = token.split(":")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    with pytest.raises(DecryptionFailed):
        ring.decrypt(f"{key_id}:{flipped}", associated_data="a")
    for bad in ("garbage", "k1:", "k1:!!!", "k1:AAAA"):
        with pytest.raises(DecryptionFailed):
            ring.decrypt(bad, associated_data="a")


def test_relabelling_the_key_id_fails(rotated: Keyring) -> None:
    token = rotated.encrypt("x", associated_data="a")
    assert token.startswith("k2:")
    with pytest.raises(DecryptionFailed):
        rotated.decrypt("k1:" + token.split(":", 1)[1], associated_data="a")


def test_rotation_encrypts_with_newest_and_reads_old(ring: Keyring, rotated: Keyring) -> None:
    old = ring.encrypt("王五", associated_data="r")
    assert rotated.current == "k2"
    assert rotated.decrypt_text(old, associated_data="r") == "王五"
    assert rotated.needs_rotation(old)
    new = rotated.reencrypt(old, associated_data="r")
    assert new.startswith("k2:") and not rotated.needs_rotation(new)
    assert rotated.reencrypt(new, associated_data="r") == new
    assert rotated.decrypt_text(new, associated_data="r") == "王五"
    # the old ring cannot read data under a key it has never seen
    with pytest.raises(UnknownKeyId) as info:
        ring.decrypt(new, associated_data="r")
    assert info.value.code == "unknown_key_id"


def test_explicit_current_key_and_raw_bytes() -> None:
    ring = Keyring({"a": bytes(32), "b": base64.b64decode(K2)}, current="a")
    assert ring.encrypt(b"x", associated_data="z").startswith("a:")
    assert ring.key_ids == ("a", "b")


@pytest.mark.parametrize("setting", [
    "", "k1", f"k1:{K1},k1:{K2}", "k1:" + base64.b64encode(bytes(16)).decode(), "k1:not base64!", f"bad id:{K1}",
])
def test_malformed_key_settings_are_refused(setting: str) -> None:
    with pytest.raises(KeyConfigError):
        Keyring.from_settings(setting)


def test_blind_index_key_must_differ_from_encryption_keys() -> None:
    with pytest.raises(KeyConfigError):
        Keyring.from_settings(f"k1:{K1}", K1)


def test_url_safe_base64_keys_are_accepted() -> None:
    raw = bytes([251] * 32)  # encodes with '+' / '/' in the standard alphabet
    url = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    a = Keyring({"k": url})
    b = Keyring({"k": raw})
    assert b.decrypt(a.encrypt(b"x", associated_data="q"), associated_data="q") == b"x"


def test_blind_index_is_stable_under_formatting(ring: Keyring) -> None:
    base = ring.blind_index("11010119900307123X", "cn_resident_id")
    for variant in ("11010119900307123x", " 110101 19900307 123X ", "110101-19900307-123x",
                    "１１０１０１１９９００３０７１２３Ｘ"):
        assert ring.blind_index(variant, "cn_resident_id") == base
    assert len(base) == 64 and int(base, 16) >= 0


def test_blind_index_separates_values_purposes_and_keys(ring: Keyring) -> None:
    a = ring.blind_index("110101199003071234", "cn_resident_id")
    assert ring.blind_index("110101199003071235", "cn_resident_id") != a
    assert ring.blind_index("110101199003071234", "passport") != a
    other = Keyring.from_settings(f"k1:{K1}", K2)
    assert other.blind_index("110101199003071234", "cn_resident_id") != a
    # rotating the encryption keys does not change the index
    assert Keyring.from_settings(f"k1:{K1},k2:{K2}", INDEX).blind_index("110101199003071234", "cn_resident_id") == a


def test_blind_index_needs_its_key() -> None:
    with pytest.raises(KeyConfigError):
        Keyring.from_settings(f"k1:{K1}").blind_index("1", "p")


def test_normalize_identifier() -> None:
    assert normalize_identifier(" e1234 5678 ") == "E12345678"


@given(st.binary(max_size=600), st.text(max_size=40))
def test_roundtrip_any_bytes(data: bytes, aad: str) -> None:
    ring = Keyring({"k1": K1})
    assert ring.decrypt(ring.encrypt(data, associated_data=aad), associated_data=aad) == data


@pytest.mark.parametrize(("name", "masked"), [
    ("张三", "张*"),
    ("欧阳娜娜", "欧***"),
    ("买买提·艾力", "买**·艾*"),
    ("John Smith", "J*** S****"),
    ("Anne-Marie Dupont", "A***-M**** D*****"),
    ("张 三", "张*"),
    ("J K", "J *"),
    ("王", "*"),
    ("", ""),
])
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(("number", "masked"), [
    ("110101199003071234", "110***********1234"),
    ("11010119900307123X", "110***********123X"),
    ("110101900307123", "110********7123"),  # 15-digit first-generation ID
    ("E12345678", "E******78"),  # passport: at most a third shown
    ("1234", "****"),
])
def test_mask_id_number(number: str, masked: str) -> None:
    assert mask_id_number(number) == masked
    assert len(mask_id_number(number)) == len(number)


@pytest.mark.parametrize(("phone", "masked"), [
    ("13812345678", "138****5678"),
    ("138 1234 5678", "138****5678"),
    ("+8613812345678", "+86138****5678"),
    ("12345", "***45"),
])
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked
