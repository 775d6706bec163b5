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
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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
    """Base: `start()` gives the first request; `receive()` handles each 'p' payload.

    `expensive` marks a `receive()` that runs a key derivation (a shell runs it off its event
    loop); `sasl` marks an exchange whose messages PostgreSQL calls SASL responses.
    """

    done: bool = False
    expensive: bool = False
    sasl: bool = False

    def start(self) -> bytes:
        raise NotImplementedError

    def receive(self, data: bytes) -> bytes:
        raise NotImplementedError


class TrustAuthenticator(Authenticator):
    def start(self) -> bytes:
        self.done = True
        return b""


class CleartextAuthenticator(Authenticator):
    """AuthenticationCleartextPassword; checks against a password, a SCRAM secret (a key
    derivation, as PostgreSQL's scram_verify_plain_password) or an md5 hash.

    `doomed` (an unknown user) does the same work as for a known one and then fails.
    """

    def __init__(
        self,
        user: str,
        password: str | None,
        secret: ScramSecret | None,
        md5: str | None = None,
        *,
        doomed: bool = False,
    ) -> None:
        self.user = user
        self._password = password
        self._secret = secret
        self._md5 = md5
        self._doomed = doomed
        self.expensive = password is None and secret is not None

    def start(self) -> bytes:
        return msg.authentication(msg.AUTH_CLEARTEXT)

    def receive(self, data: bytes) -> bytes:
        given = _read_password(data)
        if self._password is not None:
            ok = hmac.compare_digest(given.encode(), self._password.encode())
        elif self._secret is not None:
            derived = ScramSecret.from_password(given, self._secret.salt, self._secret.iterations)
            ok = hmac.compare_digest(derived.stored_key, self._secret.stored_key)
        elif self._md5 is not None:
            ok = hmac.compare_digest(md5_hash(given, self.user).encode(), self._md5.encode())
        else:
            ok = False
        if self._doomed or not ok:
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
    """AuthenticationMD5Password with a fresh random salt per connection, as PostgreSQL does
    (a stable salt would let a captured response be replayed).

    A None hash or `doomed` (an unknown user) checks against a stand-in and fails the same way.
    """

    def __init__(
        self,
        user: str,
        stored_md5: str | None,
        salt: bytes | None = None,
        *,
        doomed: bool = False,
    ) -> None:
        self.user = user
        self._doomed = doomed or stored_md5 is None
        self._stored = stored_md5 or md5_hash(secrets.token_hex(16), user)
        self._salt = salt if salt is not None else secrets.token_bytes(4)

    def start(self) -> bytes:
        return msg.authentication(msg.AUTH_MD5, self._salt)

    def receive(self, data: bytes) -> bytes:
        given = _read_password(data)
        ok = hmac.compare_digest(given.encode(), md5_response(self._stored, self._salt).encode())
        if self._doomed or not ok:
            raise password_failed(self.user)
        self.done = True
        return b""


class ScramAuthenticator(Authenticator):
    """SCRAM-SHA-256 without channel binding, as PostgreSQL runs it.

    A None secret or `doomed` makes a doomed exchange (unknown user): the client gets through
    the protocol and fails at the proof, so user names cannot be probed. Nothing here derives
    a key: the secret is computed beforehand (or is a mock one, see `mock_scram_secret`).
    """

    sasl = True

    def __init__(
        self,
        user: str,
        secret: ScramSecret | None,
        nonce: Callable[[], str] = _random_nonce,
        *,
        doomed: bool = False,
    ) -> None:
        self.user = user
        self._secret = secret or mock_scram_secret(secrets.token_bytes(32), user)
        self._doomed = doomed or secret is None
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


# ---------------------------------------------------------------- credentials


def mock_salt(server_secret: bytes, user: str) -> bytes:
    """PostgreSQL's scram_mock_salt: SHA-256(server secret || user name), cut to a salt.

    Stable for one name, different between names, unpredictable without the secret."""
    return hashlib.sha256(server_secret + user.encode()).digest()[:SCRAM_SALT_LENGTH]


def mock_scram_secret(
    server_secret: bytes, user: str, iterations: int = SCRAM_ITERATIONS
) -> ScramSecret:
    """The secret a doomed exchange pretends to have: a mock salt, no key derivation (PostgreSQL
    zeroes the keys too; the proof is checked against them and fails)."""
    zero = bytes(32)
    return ScramSecret(iterations, mock_salt(server_secret, user), zero, zero)


@dataclass(frozen=True, slots=True)
class Credential:
    """What one user's exchange needs, derived once: `method` is the exchange actually run
    (md5 with only a SCRAM secret runs SCRAM, as in PostgreSQL)."""

    method: str
    scram: ScramSecret | None = None
    md5: str | None = None
    doomed: bool = False

    def authenticator(self, user: str) -> Authenticator:
        """A new exchange for one connection; cheap (no key derivation)."""
        if self.method == "trust":
            return TrustAuthenticator()
        if self.method == "password":
            return CleartextAuthenticator(user, None, self.scram, self.md5, doomed=self.doomed)
        if self.method == "md5":
            return Md5Authenticator(user, self.md5, doomed=self.doomed)
        return ScramAuthenticator(user, self.scram, doomed=self.doomed)


def credential_for(
    method: str,
    user: str,
    password: str | None = None,
    secret: str | None = None,
    salt: bytes | None = None,
) -> Credential:
    """A configured user's credential; a plaintext password costs one key derivation (with
    `salt`, random when None). `secret` is a SCRAM secret or an `md5...` hash."""
    if method == "trust":
        return Credential("trust")
    scram = ScramSecret.parse(secret) if secret and secret.startswith(SCRAM_MECHANISM) else None
    stored_md5 = secret if secret and secret.startswith("md5") else None
    if method == "md5":
        if password is not None:
            return Credential("md5", md5=md5_hash(password, user))
        if stored_md5 is not None:
            return Credential("md5", md5=stored_md5)
        # PostgreSQL falls back to SCRAM when only a SCRAM secret is stored.
        return Credential("scram-sha-256", scram=scram)
    if method not in ("password", "scram-sha-256"):
        raise ValueError(f"unknown authentication method {method!r}")
    if scram is None and password is not None:
        scram = ScramSecret.from_password(password, salt)
    if method == "password":
        # PostgreSQL keeps no plaintext: a password is checked by deriving its SCRAM key, for
        # every user alike
        return Credential("password", scram=scram, md5=stored_md5 if scram is None else None)
    return Credential("scram-sha-256", scram=scram)


def authenticator_for(
    method: str, user: str, password: str | None = None, secret: str | None = None
) -> Authenticator:
    """The exchange for one configured user. `secret` is a SCRAM secret or an `md5...` hash."""
    return credential_for(method, user, password, secret).authenticator(user)


class CredentialStore:
    """Every configured user's credential, computed once, and mock ones for unknown users.

    Unknown users get the exchange most password users have (SCRAM when tied or none), with a
    salt derived from a server-wide random secret and the name (stable, as a real user's), and
    the iteration count most SCRAM users have, so neither the exchange nor its timing tells a
    configured name from an unknown one. Nothing done per connection derives a key.
    """

    def __init__(self, server_secret: bytes | None = None) -> None:
        self.server_secret = server_secret or secrets.token_bytes(32)
        self._known: dict[str, tuple[tuple[Any, ...], Credential]] = {}
        self.unknown_method = "scram-sha-256"
        self.mock_iterations = SCRAM_ITERATIONS

    @staticmethod
    def _key(user: Any) -> tuple[Any, ...]:
        return (user.method, user.password, user.secret)

    def compute(self, name: str, user: Any) -> Credential:
        """Derive (expensive for a plaintext password) and remember one user's credential."""
        credential = credential_for(
            user.method, name, user.password, user.secret, mock_salt(self.server_secret, name)
        )
        self._known[name] = (self._key(user), credential)
        return credential

    def load(self, users: Mapping[str, Any]) -> None:
        """Compute every user's credential (a key derivation per plaintext password: run it
        before serving or off the event loop) and the rule for unknown users."""
        self._known.clear()
        for name, user in users.items():
            self.compute(name, user)
        credentials = [c for _, c in self._known.values() if c.method != "trust"]
        counts = Counter(c.method for c in credentials).most_common()
        if counts and (len(counts) == 1 or counts[0][1] > counts[1][1]):
            self.unknown_method = counts[0][0]
        else:
            self.unknown_method = "scram-sha-256"
        iterations = Counter(c.scram.iterations for c in credentials if c.scram is not None)
        self.mock_iterations = iterations.most_common(1)[0][0] if iterations else SCRAM_ITERATIONS

    def cached(self, name: str, user: Any) -> Credential | None:
        """The credential computed for this user's current settings; None if they changed."""
        entry = self._known.get(name)
        if entry is None or entry[0] != self._key(user):
            return None
        return entry[1]

    def mock(self, name: str) -> Credential:
        """A doomed credential for a name that is not configured; cheap."""
        if self.unknown_method == "md5":
            return Credential("md5", doomed=True)
        secret = mock_scram_secret(self.server_secret, name, self.mock_iterations)
        return Credential(self.unknown_method, scram=secret, doomed=True)
