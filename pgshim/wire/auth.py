"""Password authentication exchanges (cleartext, md5, SCRAM-SHA-256), sans-IO.

An authenticator produces the AuthenticationRequest bytes to send and consumes the payloads
of the client's 'p' messages; it raises PgError (FATAL 28P01) when the client fails.
Secrets never appear in exceptions or logs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import stringprep
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from construct import ConstructError

from pgshim.errors import PgError
from pgshim.wire import messages as msg

SCRAM_MECHANISM = "SCRAM-SHA-256"
SCRAM_ITERATIONS = 4096
SCRAM_SALT_LENGTH = 16
SCRAM_NONCE_LENGTH = 18
METHODS = ("trust", "password", "md5", "scram-sha-256")


def password_failed(user: str) -> PgError:
    return PgError("28P01", f'password authentication failed for user "{user}"', severity="FATAL")


def _protocol_violation(message: str) -> PgError:
    return PgError("08P01", message, severity="FATAL")


# ---------------------------------------------------------------- SCRAM primitives


def saslprep(password: str) -> str:
    """RFC 4013 SASLprep; like PostgreSQL, a password it rejects is used as it is."""
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c)
    )
    normalized = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_c12,
        stringprep.in_table_c21_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
        stringprep.in_table_a1,
    )
    if any(check(c) for c in normalized for check in prohibited):
        return password
    return normalized


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class ScramSecret:
    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    @classmethod
    def from_password(
        cls, password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS
    ) -> ScramSecret:
        salt = salt if salt is not None else secrets.token_bytes(SCRAM_SALT_LENGTH)
        salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode(), salt, iterations)
        client_key = _hmac(salted, b"Client Key")
        return cls(
            iterations, salt, hashlib.sha256(client_key).digest(), _hmac(salted, b"Server Key")
        )

    @classmethod
    def parse(cls, text: str) -> ScramSecret:
        """`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (all base64)."""
        try:
            scheme, rest = text.split("$", 1)
            params, keys = rest.split("$", 1)
            iterations, salt = params.split(":", 1)
            stored, server = keys.split(":", 1)
            if scheme != SCRAM_MECHANISM:
                raise ValueError(scheme)
            secret = cls(
                int(iterations),
                base64.b64decode(salt, validate=True),
                base64.b64decode(stored, validate=True),
                base64.b64decode(server, validate=True),
            )
        except ValueError as exc:
            raise ValueError("not a SCRAM-SHA-256 secret") from exc
        if len(secret.stored_key) != 32 or len(secret.server_key) != 32:
            raise ValueError("not a SCRAM-SHA-256 secret")
        return secret

    def format(self) -> str:
        b64 = base64.b64encode
        return (
            f"{SCRAM_MECHANISM}${self.iterations}:{b64(self.salt).decode()}"
            f"${b64(self.stored_key).decode()}:{b64(self.server_key).decode()}"
        )


def _scram_attributes(text: str) -> list[tuple[str, str]]:
    pairs = []
    for part in text.split(","):
        if len(part) < 2 or part[1] != "=":
            raise _protocol_violation("malformed SCRAM message")
        pairs.append((part[0], part[2:]))
    return pairs


def _random_nonce() -> str:
    return base64.b64encode(secrets.token_bytes(SCRAM_NONCE_LENGTH)).decode()


# ---------------------------------------------------------------- authenticators


class Authenticator:
    """Base: `start()` gives the first request; `receive()` handles each 'p' payload."""

    done: bool = False

    def start(self) -> bytes:
        raise NotImplementedError

    def receive(self, data: bytes) -> bytes:
        raise NotImplementedError


class TrustAuthenticator(Authenticator):
    def start(self) -> bytes:
        self.done = True
        return b""


class CleartextAuthenticator(Authenticator):
    """AuthenticationCleartextPassword; checks against a password or a SCRAM secret."""

    def __init__(self, user: str, password: str | None, secret: ScramSecret | None) -> None:
        self.user = user
        self._password = password
        self._secret = secret

    def start(self) -> bytes:
        return msg.authentication(msg.AUTH_CLEARTEXT)

    def receive(self, data: bytes) -> bytes:
        given = _read_password(data)
        if self._password is not None:
            ok = hmac.compare_digest(given.encode(), self._password.encode())
        elif self._secret is not None:
            derived = ScramSecret.from_password(given, self._secret.salt, self._secret.iterations)
            ok = hmac.compare_digest(derived.stored_key, self._secret.stored_key)
        else:
            ok = False
        if not ok:
            raise password_failed(self.user)
        self.done = True
        return b""


def md5_hash(password: str, user: str) -> str:
    """The stored form `md5` + hex(md5(password + user))."""
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()


def md5_response(stored: str, salt: bytes) -> str:
    """What a client sends for AuthenticationMD5Password, given the stored `md5...` hash."""
    return "md5" + hashlib.md5(stored[3:].encode() + salt).hexdigest()


class Md5Authenticator(Authenticator):
    def __init__(self, user: str, stored_md5: str | None, salt: bytes | None = None) -> None:
        self.user = user
        self._stored = stored_md5
        self._salt = salt if salt is not None else secrets.token_bytes(4)

    def start(self) -> bytes:
        return msg.authentication(msg.AUTH_MD5, self._salt)

    def receive(self, data: bytes) -> bytes:
        given = _read_password(data)
        if self._stored is None or not hmac.compare_digest(
            given.encode(), md5_response(self._stored, self._salt).encode()
        ):
            raise password_failed(self.user)
        self.done = True
        return b""


class ScramAuthenticator(Authenticator):
    """SCRAM-SHA-256 without channel binding, as PostgreSQL runs it.

    A None secret makes a doomed exchange (unknown user): the client gets through the
    protocol and fails at the proof, so user names cannot be probed.
    """

    def __init__(
        self,
        user: str,
        secret: ScramSecret | None,
        nonce: Callable[[], str] = _random_nonce,
    ) -> None:
        self.user = user
        self._secret = secret or ScramSecret.from_password(secrets.token_hex(16))
        self._doomed = secret is None
        self._nonce = nonce
        self._step = 0
        self._client_first_bare = ""
        self._server_first = ""
        self._gs2_header = ""
        self._full_nonce = ""

    def start(self) -> bytes:
        return msg.authentication(msg.AUTH_SASL, [SCRAM_MECHANISM, ""])

    def receive(self, data: bytes) -> bytes:
        if self._step == 0:
            self._step = 1
            return msg.authentication(msg.AUTH_SASL_CONTINUE, self._client_first(data).encode())
        if self._step == 1:
            self._step = 2
            final = self._client_final(data)
            self.done = True
            return msg.authentication(msg.AUTH_SASL_FINAL, final.encode())
        raise _protocol_violation("unexpected SASL response")

    def _client_first(self, data: bytes) -> str:
        try:
            initial = msg.SASLInitialResponseBody.parse(data)
        except (ConstructError, UnicodeDecodeError) as exc:
            raise _protocol_violation("malformed SASLInitialResponse") from exc
        if initial.mechanism != SCRAM_MECHANISM:
            raise _protocol_violation("client selected an invalid SASL authentication mechanism")
        text = (initial.response.data or b"").decode("utf-8", "replace")
        parts = text.split(",", 2)
        if len(parts) != 3 or parts[0] not in ("n", "y") or parts[1]:
            raise _protocol_violation("malformed SCRAM message (unsupported channel binding)")
        self._gs2_header = f"{parts[0]},{parts[1]},"
        self._client_first_bare = parts[2]
        attributes = dict(_scram_attributes(parts[2]))
        client_nonce = attributes.get("r", "")
        if not client_nonce or "n" not in attributes:
            raise _protocol_violation("malformed SCRAM message")
        self._full_nonce = client_nonce + self._nonce()
        salt = base64.b64encode(self._secret.salt).decode()
        self._server_first = f"r={self._full_nonce},s={salt},i={self._secret.iterations}"
        return self._server_first

    def _client_final(self, data: bytes) -> str:
        text = data.decode("utf-8", "replace")
        without_proof, sep, proof_part = text.rpartition(",p=")
        if not sep:
            raise _protocol_violation("malformed SCRAM message (proof missing)")
        attributes = dict(_scram_attributes(without_proof))
        expected_binding = base64.b64encode(self._gs2_header.encode()).decode()
        if attributes.get("c") != expected_binding:
            raise _protocol_violation("SCRAM channel binding check failed")
        if attributes.get("r") != self._full_nonce:
            raise _protocol_violation("SCRAM nonce does not match")
        try:
            proof = base64.b64decode(proof_part, validate=True)
        except ValueError as exc:
            raise _protocol_violation("malformed SCRAM message (invalid proof)") from exc
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        client_signature = _hmac(self._secret.stored_key, auth_message)
        if len(proof) != len(client_signature):
            raise password_failed(self.user)
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
        verified = hmac.compare_digest(hashlib.sha256(client_key).digest(), self._secret.stored_key)
        if self._doomed or not verified:
            raise password_failed(self.user)
        server_signature = _hmac(self._secret.server_key, auth_message)
        return "v=" + base64.b64encode(server_signature).decode()


def _read_password(data: bytes) -> str:
    try:
        return msg.PasswordBody.parse(data).password
    except (ConstructError, UnicodeDecodeError) as exc:
        raise _protocol_violation("invalid password packet") from exc


def authenticator_for(
    method: str, user: str, password: str | None = None, secret: str | None = None
) -> Authenticator:
    """The exchange for one configured user. `secret` is a SCRAM secret or an `md5...` hash."""
    if method == "trust":
        return TrustAuthenticator()
    scram = ScramSecret.parse(secret) if secret and secret.startswith(SCRAM_MECHANISM) else None
    if method == "password":
        return CleartextAuthenticator(user, password, scram)
    if method == "md5":
        if password is not None:
            return Md5Authenticator(user, md5_hash(password, user))
        if secret and secret.startswith("md5"):
            return Md5Authenticator(user, secret)
        # PostgreSQL falls back to SCRAM when only a SCRAM secret is stored.
        return ScramAuthenticator(user, scram)
    if method == "scram-sha-256":
        if scram is None and password is not None:
            scram = ScramSecret.from_password(password)
        return ScramAuthenticator(user, scram)
    raise ValueError(f"unknown authentication method {method!r}")
