"""Record CIDs: a record in the atproto data model, encoded as DAG-CBOR, hashed with SHA-256 and
named by a CIDv1 (``bafyrei…``), exactly as a PDS names the records it stores."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping

import libipld

_DAG_CBOR_SHA256 = bytes([0x01, 0x71, 0x12, 0x20])  # CIDv1, dag-cbor codec, sha2-256, 32 bytes


class NotInDataModel(ValueError):
    """A JSON value the atproto data model cannot hold (a float, a bad ``$link`` or ``$bytes``)."""


def _ipld(value: object) -> object:
    """A JSON value as IPLD: ``{"$link": cid}`` becomes a link, ``{"$bytes": base64}`` bytes."""
    if isinstance(value, dict):
        if set(value) == {"$link"}:
            try:
                return libipld.decode_multibase(value["$link"])[1]
            except (TypeError, ValueError) as exc:
                raise NotInDataModel(f"not a CID link: {value['$link']!r}") from exc
        if set(value) == {"$bytes"}:
            text = value["$bytes"]
            try:
                return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
            except (TypeError, binascii.Error) as exc:
                raise NotInDataModel("$bytes is not base64") from exc
        return {key: _ipld(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_ipld(item) for item in value]
    if isinstance(value, float):
        raise NotInDataModel("floats are not part of the atproto data model")
    return value


def cid_of_bytes(data: bytes) -> str:
    """The CIDv1 (base32) of DAG-CBOR bytes."""
    return str(libipld.encode_cid(_DAG_CBOR_SHA256 + hashlib.sha256(data).digest()))


def record_cid(record: Mapping[str, object]) -> str:
    """The CID a PDS gives ``record`` (its JSON form, ``$type`` included)."""
    try:
        encoded = libipld.encode_dag_cbor(_ipld(dict(record)))
    except ValueError as exc:  # libipld: integers beyond 64 bits, unsupported values
        raise NotInDataModel(str(exc)) from exc
    return cid_of_bytes(encoded)
