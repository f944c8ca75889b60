"""Service-auth JWT verification: every refusal maps to its own error class."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.auth.did import DidResolver
from server.auth.multikey import PublicKey, curve_order
from server.auth.service_jwt import ServiceJwtClaims, verify_service_jwt
from server.auth.signing import SigningKey, b64url, service_jwt, sign_jws
from server.devtools import mint_service_jwt
from server.errors import (
    AuthenticationRequired,
    BadJwt,
    BadJwtAudience,
    BadJwtLexiconMethod,
    BadJwtSignature,
    DomainError,
    JwtExpired,
)

NOW = 1_800_000_000
APP_DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
SERVICE_AUD = "did:web:tickets.example.com#AttestedNetwork"
METHOD = "tickets.atmosphere.createTicketHold"


class RecordingResolver(DidResolver):
    """A resolver over a local folder that records each signing-key lookup."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.lookups: list[tuple[str, bool]] = []

    async def signing_key(self, did: str, *, fresh: bool = False) -> PublicKey:
        self.lookups.append((did, fresh))
        return await super().signing_key(did, fresh=fresh)


def publish(folder: Path, key: SigningKey, did: str = APP_DID) -> None:
    """Write the DID document of ``did`` with ``key`` into the local folder."""
    (folder / f"{did.replace(':', '_')}.json").write_text(json.dumps(key.did_document(did)))


@pytest.fixture(params=["ES256K", "ES256"])
def app_key(request: pytest.FixtureRequest, tmp_path: Path) -> SigningKey:
    key = SigningKey.generate(request.param)
    publish(tmp_path, key)
    return key


@pytest.fixture
def resolver(tmp_path: Path) -> RecordingResolver:
    return RecordingResolver(tmp_path)


def mint(key: SigningKey, **overrides: Any) -> str:
    arguments: dict[str, Any] = {"iss": APP_DID, "aud": SERVICE_AUD, "lxm": METHOD, "now": NOW}
    arguments.update(overrides)
    return mint_service_jwt(key, **arguments)


def claims(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "iss": APP_DID,
        "aud": SERVICE_AUD,
        "lxm": METHOD,
        "iat": NOW,
        "exp": NOW + 60,
        "jti": "jti-1",
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


async def verify(token: str, resolver: DidResolver, **options: Any) -> ServiceJwtClaims:
    return await verify_service_jwt(
        token, audiences=[SERVICE_AUD], lxm=METHOD, resolver=resolver, now=NOW, **options
    )


def replace_part(token: str, index: int, data: bytes) -> str:
    parts = token.split(".")
    parts[index] = b64url(data)
    return ".".join(parts)


def segment(value: object) -> str:
    return b64url(json.dumps(value).encode())


def signature_of(token: str) -> bytes:
    part = token.rsplit(".", 1)[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


# --- accepted ------------------------------------------------------------------------------------


async def test_valid_token_is_accepted(app_key: SigningKey, resolver: RecordingResolver) -> None:
    result = await verify(mint(app_key, jti="abc"), resolver)
    assert result == ServiceJwtClaims(
        iss=APP_DID, aud=SERVICE_AUD, lxm=METHOD, exp=NOW + 60, iat=NOW, jti="abc"
    )
    assert resolver.lookups == [(APP_DID, False)]


async def test_the_services_own_token_is_accepted_with_a_fresh_jti_each_time(
    app_key: SigningKey, resolver: RecordingResolver
) -> None:
    issued = [
        service_jwt(app_key, iss=APP_DID, aud=SERVICE_AUD, lxm=METHOD, lifetime_s=60, now_s=NOW + 0.9)
        for _ in range(2)
    ]
    first, second = [await verify(token, resolver) for token in issued]
    assert (first.iss, first.aud, first.lxm, first.iat, first.exp) == (
        APP_DID,
        SERVICE_AUD,
        METHOD,
        NOW,
        NOW + 60,
    )
    assert first.jti and second.jti and first.jti != second.jti


async def test_iss_may_carry_a_service_fragment(app_key: SigningKey, resolver: RecordingResolver) -> None:
    result = await verify(mint(app_key, iss=f"{APP_DID}#atproto_app"), resolver)
    assert result.iss == f"{APP_DID}#atproto_app"
    assert result.did == APP_DID
    assert resolver.lookups == [(APP_DID, False)]


async def test_iat_and_jti_may_be_optional(app_key: SigningKey, resolver: RecordingResolver) -> None:
    token = sign_jws(app_key, {"alg": app_key.alg}, claims(iat=None, jti=None))
    result = await verify(token, resolver, require_jti=False)
    assert (result.iat, result.jti) == (None, None)


async def test_rotated_key_is_picked_up_by_the_one_re_resolution(
    app_key: SigningKey, resolver: RecordingResolver, tmp_path: Path
) -> None:
    await verify(mint(app_key), resolver)
    rotated = SigningKey.generate(app_key.alg)
    publish(tmp_path, rotated)
    await verify(mint(rotated), resolver)
    assert resolver.lookups == [(APP_DID, False), (APP_DID, False), (APP_DID, True)]


# --- signature -----------------------------------------------------------------------------------


async def test_forged_signature_is_refused(app_key: SigningKey, resolver: RecordingResolver) -> None:
    token = mint(app_key)
    signature = bytearray(signature_of(token))
    signature[5] ^= 0x01
    with pytest.raises(BadJwtSignature):
        await verify(replace_part(token, 2, bytes(signature)), resolver)


async def test_tampered_payload_is_refused(app_key: SigningKey, resolver: RecordingResolver) -> None:
    token = mint(app_key)
    with pytest.raises(BadJwtSignature):
        await verify(replace_part(token, 1, json.dumps(claims(jti="other")).encode()), resolver)


async def test_wrong_key_is_re_resolved_once_then_refused(
    app_key: SigningKey, resolver: RecordingResolver
) -> None:
    other = SigningKey.generate(app_key.alg)
    with pytest.raises(BadJwtSignature, match="does not verify"):
        await verify(mint(other), resolver)
    assert resolver.lookups == [(APP_DID, False), (APP_DID, True)]


async def test_alg_mismatch_is_refused(tmp_path: Path, resolver: RecordingResolver) -> None:
    publish(tmp_path, SigningKey.generate("ES256K"))
    p256 = SigningKey.generate("ES256")
    with pytest.raises(BadJwtSignature, match="issuer's key is ES256K"):
        await verify(mint(p256), resolver)
    assert resolver.lookups == [(APP_DID, False), (APP_DID, True)]


async def test_es256_header_over_a_k256_signature_is_refused(
    tmp_path: Path, resolver: RecordingResolver
) -> None:
    key = SigningKey.generate("ES256K")
    publish(tmp_path, key)
    with pytest.raises(BadJwtSignature):
        await verify(sign_jws(key, {"typ": "JWT", "alg": "ES256"}, claims()), resolver)


async def test_high_s_signature_is_refused(app_key: SigningKey, resolver: RecordingResolver) -> None:
    token = mint(app_key)
    signature = signature_of(token)
    high_s = curve_order(app_key.alg) - int.from_bytes(signature[32:], "big")
    with pytest.raises(BadJwtSignature, match="low-S"):
        await verify(replace_part(token, 2, signature[:32] + high_s.to_bytes(32, "big")), resolver)
    assert resolver.lookups == []


@pytest.mark.parametrize(
    "signature",
    [
        b"\x01" * 63,
        b"\x01" * 65,
        b"\0" * 32 + b"\x01" * 32,
        b"\x01" * 32 + b"\0" * 32,
        b"\xff" * 32 + b"\x01" * 32,
    ],
)
async def test_malformed_signature_is_refused(
    app_key: SigningKey, resolver: RecordingResolver, signature: bytes
) -> None:
    with pytest.raises(BadJwtSignature):
        await verify(replace_part(mint(app_key), 2, signature), resolver)


async def test_unresolvable_issuer_is_a_bad_jwt(resolver: RecordingResolver) -> None:
    key = SigningKey.generate()
    with pytest.raises(BadJwt, match="cannot get the issuer's signing key") as caught:
        await verify(mint(key, iss="did:example:nobody"), resolver)
    assert type(caught.value) is BadJwt


# --- claims --------------------------------------------------------------------------------------


async def test_wrong_audience_is_refused(app_key: SigningKey, resolver: RecordingResolver) -> None:
    with pytest.raises(BadJwtAudience):
        await verify(mint(app_key, aud="did:web:tickets.example.com"), resolver)


async def test_any_configured_audience_is_accepted(app_key: SigningKey, resolver: RecordingResolver) -> None:
    bare = "did:web:tickets.example.com"
    result = await verify_service_jwt(
        mint(app_key, aud=bare),
        audiences={SERVICE_AUD, bare},
        lxm=METHOD,
        resolver=resolver,
        now=NOW,
    )
    assert result.aud == bare


@pytest.mark.parametrize("aud", [None, ["did:web:tickets.example.com#AttestedNetwork"], 7])
async def test_missing_or_non_string_audience_is_refused(
    app_key: SigningKey, resolver: RecordingResolver, aud: Any
) -> None:
    with pytest.raises(BadJwtAudience):
        await verify(sign_jws(app_key, {"alg": app_key.alg}, claims(aud=aud)), resolver)


async def test_wrong_lxm_is_refused(app_key: SigningKey, resolver: RecordingResolver) -> None:
    with pytest.raises(BadJwtLexiconMethod):
        await verify(mint(app_key, lxm="tickets.atmosphere.releaseTicketHold"), resolver)


async def test_missing_lxm_is_refused(app_key: SigningKey, resolver: RecordingResolver) -> None:
    with pytest.raises(BadJwtLexiconMethod, match="no lxm"):
        await verify(mint(app_key, lxm=None), resolver)


async def test_expired_token_is_refused(app_key: SigningKey, resolver: RecordingResolver) -> None:
    with pytest.raises(JwtExpired):
        await verify(mint(app_key, now=NOW - 61), resolver)
    with pytest.raises(JwtExpired):
        await verify(mint(app_key, now=NOW - 60), resolver)


@pytest.mark.parametrize("exp", [None, "1800000060", 1800000060.5, True])
async def test_missing_or_non_integer_exp_is_refused(
    app_key: SigningKey, resolver: RecordingResolver, exp: Any
) -> None:
    with pytest.raises(BadJwt, match="exp") as caught:
        await verify(sign_jws(app_key, {"alg": app_key.alg}, claims(exp=exp)), resolver)
    assert type(caught.value) is BadJwt


async def test_too_long_lifetime_is_refused(app_key: SigningKey, resolver: RecordingResolver) -> None:
    with pytest.raises(BadJwt, match="more than 300 s"):
        await verify(mint(app_key, exp_in=301), resolver)
    with pytest.raises(BadJwt, match="lifetime"):
        await verify(mint(app_key, iat=NOW - 250, exp_in=60), resolver)


async def test_iat_in_the_future_is_refused(app_key: SigningKey, resolver: RecordingResolver) -> None:
    with pytest.raises(BadJwt, match="iat"):
        await verify(mint(app_key, iat=NOW + 31), resolver)
    assert (await verify(mint(app_key, iat=NOW + 30), resolver)).iat == NOW + 30


@pytest.mark.parametrize("jti", [None, "", "x" * 201, 12])
async def test_missing_or_malformed_jti_is_refused(
    app_key: SigningKey, resolver: RecordingResolver, jti: Any
) -> None:
    with pytest.raises(BadJwt, match="jti"):
        await verify(sign_jws(app_key, {"alg": app_key.alg}, claims(jti=jti)), resolver)


@pytest.mark.parametrize(
    "iss", [None, 42, "app.example.com", "did:plc:", "did:web:app.example.com#", "DID:plc:abc"]
)
async def test_malformed_iss_is_refused(app_key: SigningKey, resolver: RecordingResolver, iss: Any) -> None:
    with pytest.raises(BadJwt, match="iss"):
        await verify(sign_jws(app_key, {"alg": app_key.alg}, claims(iss=iss)), resolver)


# --- header and shape ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        {"typ": "JWT", "alg": "none"},
        {"typ": "JWT", "alg": "HS256"},
        {"typ": "JWT", "alg": "EdDSA"},
        {"typ": "JWT", "alg": "es256k"},
        {"typ": "JWT"},
        {"typ": "JWT", "alg": ["ES256K"]},
        {"typ": "at+jwt", "alg": "ES256K"},
        {"typ": "refresh+jwt", "alg": "ES256K"},
        {"typ": "JWT", "alg": "ES256K", "crit": ["exp"]},
    ],
)
async def test_unacceptable_header_is_refused(resolver: RecordingResolver, header: dict[str, Any]) -> None:
    key = SigningKey.generate()
    with pytest.raises(BadJwt) as caught:
        await verify(sign_jws(key, header, claims()), resolver)
    assert type(caught.value) is BadJwt


async def test_alg_none_with_empty_signature_is_refused(resolver: RecordingResolver) -> None:
    token = f"{segment({'alg': 'none'})}.{segment(claims())}."
    with pytest.raises(BadJwt):
        await verify(token, resolver)


GOOD_HEADER = segment({"typ": "JWT", "alg": "ES256K"})
GOOD_PAYLOAD = segment(claims())
SOME_SIGNATURE = b64url(b"\x01" * 64)
HUGE_INTEGER = b'{"exp": 1' + b"0" * 5000 + b"}"


@pytest.mark.parametrize(
    "token",
    [
        f"{GOOD_HEADER}.{GOOD_PAYLOAD}",
        f"{GOOD_HEADER}.{GOOD_PAYLOAD}.{SOME_SIGNATURE}.{SOME_SIGNATURE}",
        f"{GOOD_HEADER}..{SOME_SIGNATURE}",
        f"{GOOD_HEADER}.{GOOD_PAYLOAD}=.{SOME_SIGNATURE}",
        f"{GOOD_HEADER}.{GOOD_PAYLOAD}.{SOME_SIGNATURE}=",
        f"{GOOD_HEADER}.{GOOD_PAYLOAD}.a+b/",
        f"{GOOD_HEADER}.{GOOD_PAYLOAD}.abcde",
        f"{GOOD_HEADER}.é{GOOD_PAYLOAD}.{SOME_SIGNATURE}",
        f"{GOOD_HEADER}.{b64url(b'not json')}.{SOME_SIGNATURE}",
        f"{GOOD_HEADER}.{b64url(bytes([0xFF, 0xFE, 0x00]))}.{SOME_SIGNATURE}",
        f"{GOOD_HEADER}.{segment(['iss', APP_DID])}.{SOME_SIGNATURE}",
        f"{GOOD_HEADER}.{segment('a string')}.{SOME_SIGNATURE}",
        f"{segment([1])}.{GOOD_PAYLOAD}.{SOME_SIGNATURE}",
        f"{GOOD_HEADER}.{b64url(b'[' * 5000)}.{SOME_SIGNATURE}",
        f"{GOOD_HEADER}.{b64url(HUGE_INTEGER)}.{SOME_SIGNATURE}",
        "x" * 9000,
        "Bearer " + f"{GOOD_HEADER}.{GOOD_PAYLOAD}.{SOME_SIGNATURE}",
    ],
)
async def test_malformed_token_is_a_bad_jwt(resolver: RecordingResolver, token: str) -> None:
    with pytest.raises(BadJwt) as caught:
        await verify(token, resolver)
    assert type(caught.value) is BadJwt
    assert resolver.lookups == []


async def test_empty_token_requires_authentication(resolver: RecordingResolver) -> None:
    with pytest.raises(AuthenticationRequired):
        await verify("", resolver)


# --- robustness ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children),
    max_leaves=12,
)
payloads = st.fixed_dictionaries(
    {
        "iss": st.sampled_from([APP_DID, f"{APP_DID}#atproto_app"]),
        "aud": st.just(SERVICE_AUD),
        "lxm": st.just(METHOD),
        "exp": st.integers(NOW - 100, NOW + 400),
        "iat": st.integers(NOW - 400, NOW + 100),
        "jti": st.text(max_size=210),
    }
)
# Mostly plausible claims with one of them replaced by an arbitrary JSON value.
mutated_payloads = st.builds(
    lambda payload, name, value: {**payload, name: value},
    payloads,
    st.sampled_from(["iss", "aud", "lxm", "exp", "iat", "jti", "extra"]),
    json_values,
)
segments = st.binary(max_size=120).map(b64url)
FUZZ_KEY = SigningKey.generate()
tokens = (
    st.text(max_size=300)
    | st.builds(lambda payload: sign_jws(FUZZ_KEY, {"alg": "ES256K"}, payload), payloads | mutated_payloads)
    | st.builds(".".join, st.lists(segments, min_size=1, max_size=4))
    | st.builds(
        lambda header, payload, signature: f"{segment(header)}.{segment(payload)}.{signature}",
        st.fixed_dictionaries({"alg": st.sampled_from(["ES256K", "ES256"])}) | json_values,
        mutated_payloads | json_values,
        segments,
    )
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=tokens)
async def test_arbitrary_tokens_only_raise_domain_errors(tmp_path: Path, token: str) -> None:
    publish(tmp_path, FUZZ_KEY)
    with contextlib.suppress(DomainError):
        await verify(token, DidResolver(tmp_path))
