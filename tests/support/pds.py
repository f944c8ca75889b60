"""A PDS stand-in on loopback: a real HTTP server speaking real XRPC.

It keeps accounts (handle, app password) and their records as DAG-CBOR with their CIDs (SHA-256,
CIDv1), signs session tokens (HS256 JWTs, access and refresh, with expiry), and answers errors the
way a PDS does: ``RecordNotFound``, ``InvalidSwap``, ``AuthRequired``, ``ExpiredToken``,
``InvalidToken``. Each account gets a DID document in the server's local DID-document folder
naming this PDS as its ``#atproto_pds``. Nothing reaches the internet.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import libipld

from server.auth.signing import SigningKey

ACCESS_SCOPE = "com.atproto.access"
REFRESH_SCOPE = "com.atproto.refresh"
CALENDAR = "community.lexicon.calendar.event"
# The organizer of the event-graph and publishing tests: an account on the stand-in.
ORGANIZER = "did:plc:organizerpdsaaaaaaaaaaaa"
ORGANIZER_HANDLE = "organizer.test"
ORGANIZER_PASSWORD = "app-pass-1234"


def calendar_event(name: str = "Night market", **fields: Any) -> dict[str, Any]:
    """A community.lexicon.calendar.event record as an event app writes it."""
    return {
        "$type": CALENDAR,
        "name": name,
        "createdAt": "2026-09-01T10:00:00.000Z",
        "startsAt": "2026-12-05T18:00:00.000Z",
        "endsAt": "2026-12-05T23:30:00.000Z",
        **fields,
    }


def uri_of(rkey: str, repo: str = ORGANIZER, collection: str = CALENDAR) -> str:
    return f"at://{repo}/{collection}/{rkey}"


class XrpcFailure(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def cid_of(value: Any) -> tuple[str, bytes]:
    """The CID and DAG-CBOR bytes of a JSON record (plain JSON values, as the tests write them)."""
    encoded = libipld.encode_dag_cbor(value)
    return libipld.encode_cid(bytes([1, 0x71, 0x12, 0x20]) + hashlib.sha256(encoded).digest()), encoded


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Account:
    did: str
    handle: str
    password: str


@dataclass
class StoredRecord:
    cid: str
    value: Any
    encoded: bytes


@dataclass
class LocalPds:
    """``start()`` it, ``create_account(…)``, then point DIDs at it. ``calls`` lists every XRPC
    method called, in order; ``advance(seconds)`` moves its clock (tokens expire)."""

    did_docs: Path
    access_ttl_s: int = 120
    refresh_ttl_s: int = 3600
    accounts: dict[str, Account] = field(default_factory=dict)
    records: dict[tuple[str, str, str], StoredRecord] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    # Answers given instead of the record for these (repo, collection, rkey): (status, raw body).
    raw_answers: dict[tuple[str, str, str], tuple[int, bytes]] = field(default_factory=dict)
    _secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _offset_s: float = 0
    _revoked: set[str] = field(default_factory=set)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _server: ThreadingHTTPServer | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> LocalPds:
        pds = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                pds._handle(self, "GET")

            def do_POST(self) -> None:
                pds._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def advance(self, seconds: float) -> None:
        self._offset_s += seconds

    def now(self) -> int:
        return int(time.time() + self._offset_s)

    # --- accounts and records, as the tests set them up ------------------------------------------

    def create_account(self, did: str, handle: str, password: str, key: SigningKey | None = None) -> Account:
        """An account here, and its DID document (naming this PDS, and ``key`` as its signing key
        when given) in the DID-document folder."""
        account = Account(did, handle, password)
        self.accounts[did] = account
        document: dict[str, Any] = {
            **(key.did_document(did) if key is not None else {}),
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": did,
            "alsoKnownAs": [f"at://{handle}"],
            "service": [
                {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": self.url}
            ],
        }
        name = did.replace(":", "_")
        (self.did_docs / f"{name}.json").write_text(json.dumps(document))
        return account

    def put(self, repo: str, collection: str, rkey: str, value: Any) -> str:
        """Store a record as its owner would (any JSON value: the tests also store broken ones)."""
        cid, encoded = cid_of(value)
        with self._lock:
            self.records[(repo, collection, rkey)] = StoredRecord(cid, value, encoded)
        return cid

    def get(self, repo: str, collection: str, rkey: str) -> StoredRecord | None:
        return self.records.get((repo, collection, rkey))

    def count(self, nsid: str) -> int:
        return sum(1 for called in self.calls if called == nsid)

    # --- XRPC ------------------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, verb: str) -> None:
        parts = urlsplit(request.path)
        nsid = parts.path.removeprefix("/xrpc/")
        self.calls.append(nsid)
        params = dict(parse_qsl(parts.query))
        length = int(request.headers.get("content-length") or 0)
        raw = request.rfile.read(length) if length else b""
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        routes = {
            ("POST", "com.atproto.server.createSession"): self._create_session,
            ("POST", "com.atproto.server.refreshSession"): self._refresh_session,
            ("GET", "com.atproto.repo.getRecord"): self._get_record,
            ("POST", "com.atproto.repo.putRecord"): self._put_record,
            ("POST", "com.atproto.repo.deleteRecord"): self._delete_record,
        }
        route = routes.get((verb, nsid))
        try:
            if route is None:
                raise XrpcFailure(404, "MethodNotImplemented", f"{nsid} is not served here")
            body = json.loads(raw) if raw else {}
            status, answer = route(params, body, token)
        except XrpcFailure as failure:
            status, answer = (
                failure.status,
                json.dumps({"error": failure.error, "message": failure.message}).encode(),
            )
        request.send_response(status)
        request.send_header("content-type", "application/json")
        request.send_header("content-length", str(len(answer)))
        request.end_headers()
        request.wfile.write(answer)

    def _token(self, did: str, scope: str, ttl_s: int) -> str:
        now = self.now()
        header = _b64url(json.dumps({"alg": "HS256", "typ": "at+jwt"}).encode())
        claims = {"scope": scope, "sub": did, "iat": now, "exp": now + ttl_s, "jti": secrets.token_hex(8)}
        payload = _b64url(json.dumps(claims).encode())
        signature = hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64url(signature)}"

    def _claims(self, token: str | None, scope: str) -> dict[str, Any]:
        if token is None:
            raise XrpcFailure(401, "AuthRequired", "Authentication Required")
        try:
            header, payload, signature = token.split(".")
            expected = hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
            valid = hmac.compare_digest(_b64url(expected), signature)
            claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            valid, claims = False, {}
        if not valid or claims.get("scope") != scope or claims.get("jti") in self._revoked:
            raise XrpcFailure(400, "InvalidToken", "Token could not be verified")
        if claims["exp"] <= self.now():
            raise XrpcFailure(400, "ExpiredToken", "Token has expired")
        return claims

    def _session(self, account: Account) -> tuple[int, bytes]:
        answer = {
            "did": account.did,
            "handle": account.handle,
            "accessJwt": self._token(account.did, ACCESS_SCOPE, self.access_ttl_s),
            "refreshJwt": self._token(account.did, REFRESH_SCOPE, self.refresh_ttl_s),
            "active": True,
        }
        return 200, json.dumps(answer).encode()

    def _create_session(
        self, _params: dict[str, str], body: dict[str, Any], _token: str | None
    ) -> tuple[int, bytes]:
        for account in self.accounts.values():
            if (
                body.get("identifier") in (account.did, account.handle)
                and body.get("password") == account.password
            ):
                return self._session(account)
        raise XrpcFailure(401, "AuthenticationRequired", "Invalid identifier or password")

    def _refresh_session(
        self, _params: dict[str, str], _body: dict[str, Any], token: str | None
    ) -> tuple[int, bytes]:
        claims = self._claims(token, REFRESH_SCOPE)
        self._revoked.add(claims["jti"])  # refresh tokens are single use
        return self._session(self.accounts[claims["sub"]])

    def _get_record(
        self, params: dict[str, str], _body: dict[str, Any], _token: str | None
    ) -> tuple[int, bytes]:
        key = (params.get("repo", ""), params.get("collection", ""), params.get("rkey", ""))
        if key in self.raw_answers:
            return self.raw_answers[key]
        stored = self.records.get(key)
        if stored is None or params.get("cid", stored.cid) != stored.cid:
            raise XrpcFailure(400, "RecordNotFound", f"Could not locate record: at://{'/'.join(key)}")
        answer = {"uri": f"at://{'/'.join(key)}", "cid": stored.cid, "value": stored.value}
        return 200, json.dumps(answer).encode()

    def _writer(self, body: dict[str, Any], token: str | None) -> tuple[str, str, str]:
        claims = self._claims(token, ACCESS_SCOPE)
        repo, collection, rkey = body.get("repo"), body.get("collection"), body.get("rkey")
        if repo != claims["sub"]:
            raise XrpcFailure(401, "AuthRequired", "Only the repository's own account may write to it")
        if not isinstance(collection, str) or not isinstance(rkey, str):
            raise XrpcFailure(400, "InvalidRequest", "collection and rkey are required")
        return repo, collection, rkey

    def _check_swap(self, key: tuple[str, str, str], body: dict[str, Any]) -> None:
        if "swapRecord" not in body:
            return
        current = self.records.get(key)
        if (current.cid if current else None) != body["swapRecord"]:
            raise XrpcFailure(400, "InvalidSwap", f"Record was at {current.cid if current else 'null'}")

    def _put_record(
        self, _params: dict[str, str], body: dict[str, Any], token: str | None
    ) -> tuple[int, bytes]:
        key = self._writer(body, token)
        record = body.get("record")
        if not isinstance(record, dict) or record.get("$type") != key[1]:
            raise XrpcFailure(400, "InvalidRequest", f"Invalid $type: expected {key[1]}")
        with self._lock:
            self._check_swap(key, body)
            cid = self.put(*key, record)
        answer = {"uri": f"at://{'/'.join(key)}", "cid": cid, "validationStatus": "unknown"}
        return 200, json.dumps(answer).encode()

    def _delete_record(
        self, _params: dict[str, str], body: dict[str, Any], token: str | None
    ) -> tuple[int, bytes]:
        key = self._writer(body, token)
        with self._lock:
            self._check_swap(key, body)
            self.records.pop(key, None)
        return 200, b"{}"
