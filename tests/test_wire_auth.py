"""Authentication exchanges: SCRAM with the RFC 7677 vector, md5, cleartext."""

from __future__ import annotations

import base64
import hashlib

import pytest

from pgshim.errors import PgError
from pgshim.wire import auth
from pgshim.wire.messages import SASLInitialResponseBody

# RFC 7677 section 3
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def initial(response: bytes) -> bytes:
    return SASLInitialResponseBody.build(
        {"mechanism": "SCRAM-SHA-256", "response": {"data": response}}
    )


def rfc_authenticator(secret: auth.ScramSecret) -> auth.ScramAuthenticator:
    return auth.ScramAuthenticator("user", secret, nonce=lambda: SERVER_NONCE)


def test_scram_rfc7677_vector_from_password() -> None:
    authenticator = rfc_authenticator(auth.ScramSecret.from_password("pencil", SALT))
    assert authenticator.start().endswith(b"SCRAM-SHA-256\x00\x00")
    assert authenticator.receive(initial(CLIENT_FIRST))[9:] == SERVER_FIRST
    assert authenticator.receive(CLIENT_FINAL)[9:] == SERVER_FINAL
    assert authenticator.done


def test_scram_vector_from_stored_secret_round_trips() -> None:
    secret = auth.ScramSecret.from_password("pencil", SALT)
    parsed = auth.ScramSecret.parse(secret.format())
    assert parsed == secret
    authenticator = rfc_authenticator(parsed)
    authenticator.receive(initial(CLIENT_FIRST))
    assert authenticator.receive(CLIENT_FINAL)[9:] == SERVER_FINAL


def test_scram_wrong_password_is_28p01() -> None:
    authenticator = rfc_authenticator(auth.ScramSecret.from_password("not pencil", SALT))
    authenticator.receive(initial(CLIENT_FIRST))
    with pytest.raises(PgError) as err:
        authenticator.receive(CLIENT_FINAL)
    assert err.value.sqlstate == "28P01"
    assert err.value.message == 'password authentication failed for user "user"'
    assert "pencil" not in repr(err.value)


def test_scram_unknown_user_fails_only_at_the_proof() -> None:
    authenticator = auth.ScramAuthenticator("ghost", None, nonce=lambda: SERVER_NONCE)
    assert authenticator.receive(initial(b"n,,n=,r=rOprNGfwEbeRWgbNEkqO")).startswith(b"R")
    with pytest.raises(PgError) as err:
        authenticator.receive(CLIENT_FINAL)
    assert err.value.sqlstate == "28P01"


def test_scram_rejects_channel_binding_and_other_mechanisms() -> None:
    with pytest.raises(PgError) as err:
        rfc_authenticator(auth.ScramSecret.from_password("x")).receive(
            initial(b"p=tls-server-end-point,,n=,r=abc")
        )
    assert err.value.sqlstate == "08P01"
    bad = SASLInitialResponseBody.build({"mechanism": "PLAIN", "response": {"data": b"x"}})
    with pytest.raises(PgError):
        rfc_authenticator(auth.ScramSecret.from_password("x")).receive(bad)


def test_scram_nonce_mismatch() -> None:
    authenticator = rfc_authenticator(auth.ScramSecret.from_password("pencil", SALT))
    authenticator.receive(initial(CLIENT_FIRST))
    with pytest.raises(PgError) as err:
        authenticator.receive(CLIENT_FINAL.replace(b"k0,p", b"k1,p"))
    assert err.value.sqlstate == "08P01"


def test_md5_exchange() -> None:
    salt = b"\x01\x02\x03\x04"
    authenticator = auth.Md5Authenticator("alice", auth.md5_hash("secret", "alice"), salt)
    assert authenticator.start() == b"R\x00\x00\x00\x0c\x00\x00\x00\x05" + salt
    inner = hashlib.md5(b"secretalice").hexdigest()
    answer = "md5" + hashlib.md5(inner.encode() + salt).hexdigest()
    assert authenticator.receive(answer.encode() + b"\x00") == b""
    assert authenticator.done
    wrong = auth.Md5Authenticator("alice", auth.md5_hash("secret", "alice"), salt)
    with pytest.raises(PgError) as err:
        wrong.receive(b"md5" + b"0" * 32 + b"\x00")
    assert err.value.sqlstate == "28P01"


def test_cleartext_against_scram_secret() -> None:
    secret = auth.ScramSecret.from_password("pw").format()
    good = auth.authenticator_for("password", "bob", secret=secret)
    good.start()
    good.receive(b"pw\x00")
    assert good.done
    bad = auth.authenticator_for("password", "bob", secret=secret)
    with pytest.raises(PgError):
        bad.receive(b"nope\x00")


def test_saslprep_maps_and_normalizes() -> None:
    assert auth.saslprep("I\u00adX") == "IX"  # soft hyphen maps to nothing
    assert auth.saslprep("\u2168") == "IX"  # NFKC
    assert auth.saslprep("a\u0007b") == "a\u0007b"  # prohibited: used as it is
