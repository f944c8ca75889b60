"""The desk credential at rest: sealed with ``SecretBox`` (XSalsa20-Poly1305), never in clear.

With a desk PIN the key is derived from the PIN by Argon2id (``nacl.pwhash.argon2id``, a fresh
salt per sealing, the cost kept with the sealed credential): whoever holds the desk's files learns
nothing of the credential without the PIN, and each guess costs an Argon2id run. Without a PIN the
key is a random key file kept beside the store (``0600``): the credential is then not in the
database, so a copy of the database alone (a backup, a file sent for support) does not carry it,
but whoever holds the whole folder holds the credential; the organizer can always revoke the desk
on the server (``tickets device revoke``).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

KEY_FILE = "desk.key"
PIN_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
PIN_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE


class PinRequired(Exception):
    """The credential is sealed with a desk PIN and none was given."""


class WrongPin(Exception):
    """The PIN given does not open the credential."""


def private_file(path: Path) -> None:
    """Create ``path`` (empty) readable by its owner only, or make it so."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    path.chmod(0o600)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _key_file(folder: Path) -> bytes:
    """The desk's random key, made on first use."""
    path = folder / KEY_FILE
    if not path.exists():
        private_file(path)
        path.write_bytes(nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE))
    path.chmod(0o600)
    key = path.read_bytes()
    if len(key) != nacl.secret.SecretBox.KEY_SIZE:
        raise WrongPin("the desk's key file is damaged: enroll the desk again")
    return key


def _pin_key(pin: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, pin.encode(), salt, opslimit=opslimit, memlimit=memlimit
    )


def seal(credential: str, pin: str | None, folder: Path) -> str:
    """The credential sealed under the PIN (or the folder's key file), as text for the store."""
    if pin:
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        key = _pin_key(pin, salt, PIN_OPSLIMIT, PIN_MEMLIMIT)
        header = {"kdf": "argon2id", "salt": _b64(salt), "ops": PIN_OPSLIMIT, "mem": PIN_MEMLIMIT}
    else:
        key, header = _key_file(folder), {"kdf": "key-file"}
    box = nacl.secret.SecretBox(key).encrypt(credential.encode())
    return json.dumps({**header, "box": _b64(bytes(box))})


def unseal(sealed: str, pin: str | None, folder: Path) -> str:
    """The credential. Raises :class:`PinRequired` or :class:`WrongPin`."""
    data = json.loads(sealed)
    if "box" not in data:
        raise WrongPin("this desk's sealed credential is missing: enroll it again")
    if data.get("kdf") == "argon2id":
        if not pin:
            raise PinRequired("this desk is locked with a PIN")
        salt = base64.b64decode(data["salt"])
        key = _pin_key(pin, salt, int(data["ops"]), int(data["mem"]))
    else:
        key = _key_file(folder)
    try:
        return nacl.secret.SecretBox(key).decrypt(base64.b64decode(data["box"])).decode()
    except nacl.exceptions.CryptoError:
        raise WrongPin("wrong PIN") from None


def forget(folder: Path) -> None:
    """Remove the key file (a wiped desk)."""
    (folder / KEY_FILE).unlink(missing_ok=True)


class SecretBoxVault:
    """The credential of the desk whose files are in ``folder``, sealed under ``pin`` (or the
    folder's key file): the core's :class:`~scanner_app.core.ports.CredentialVault`."""

    def __init__(self, folder: Path, pin: str | None) -> None:
        self.folder = folder
        self.pin = pin

    def seal(self, credential: str) -> str:
        return seal(credential, self.pin, self.folder)

    def unseal(self, sealed: str) -> str:
        return unseal(sealed, self.pin, self.folder)

    def forget(self) -> None:
        forget(self.folder)
