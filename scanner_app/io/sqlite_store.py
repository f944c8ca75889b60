"""The desk's local store: one SQLite file (stdlib ``sqlite3``, WAL, ``synchronous=FULL``).

It holds the enrollment (its credential sealed, :mod:`scanner_app.io.vault`), each list's
verified offline bundle and ticket index, every check-in record the desk knows (its own and those
pulled from other desks, once per ``(device, record id)``), which records still have to go
upstream, the pull cursors and the door staff's choices. Every write is one committed transaction,
so a scan is on disk before its result is shown and a crash (or ``kill -9``) loses nothing that was
shown and doubles nothing that was sent.

At rest the store holds no attendee's name, ticket number or ticket id: index entries are sealed
under keys only a pass opens, and records name their ticket by reference
(:func:`sync.records.ticket_ref`). The file is ``0600`` in a ``0700`` folder (made so on every
open). A store written by an older desk, with ticket ids or the credential in clear, is rewritten
on open and vacuumed, so no old page keeps them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scanner_app.core.ports import BundleState, DeskEnrollment, ListInfo, OwnAdmission
from scanner_app.io.vault import private_file
from sync.checkin import Direction, Reason, Verdict
from sync.records import Record, RecordKey, is_ticket_ref, ticket_ref

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bundles (
    list_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    seq INTEGER NOT NULL,
    issued_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ticket_entries (
    list_id TEXT NOT NULL,
    lookup BLOB NOT NULL,
    entry BLOB NOT NULL,
    PRIMARY KEY (list_id, lookup)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    list_id TEXT NOT NULL,
    ticket_id TEXT,
    token_generation INTEGER,
    direction TEXT NOT NULL CHECK (direction IN ('entry', 'exit')),
    decision TEXT NOT NULL CHECK (decision IN ('admit', 'refuse', 'attention')),
    reason TEXT NOT NULL,
    device_ms INTEGER NOT NULL,
    clock_offset_ms INTEGER NOT NULL,
    gate TEXT,
    scanner_did TEXT,
    undoes TEXT,
    manual_reason TEXT,
    UNIQUE (device_id, record_id)
);
CREATE TABLE IF NOT EXISTS pending (seq INTEGER PRIMARY KEY REFERENCES records (seq));
CREATE TABLE IF NOT EXISTS cursors (
    peer TEXT NOT NULL,
    list_id TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    PRIMARY KEY (peer, list_id)
);
"""

_COLUMNS = (
    "device_id, record_id, list_id, ticket_id, token_generation, direction, decision, reason,"
    " device_ms, clock_offset_ms, gate, scanner_did, manual_reason"
)
# The queries below splice in this constant column list only.
_INSERT = f"INSERT OR IGNORE INTO records ({_COLUMNS}, undoes) VALUES ({', '.join('?' * 14)})"  # noqa: S608


def _row(record: Record, undoes: str | None = None) -> tuple[Any, ...]:
    return (
        record.device_id,
        record.record_id,
        record.list_id,
        record.with_ticket_ref().ticket_id,
        record.token_generation,
        record.direction.value,
        record.decision.value,
        record.reason.value,
        record.device_ms,
        record.clock_offset_ms,
        record.gate,
        record.scanner_did,
        record.manual_reason,
        undoes,
    )


def _record(row: tuple[Any, ...]) -> Record:
    return Record(
        device_id=row[0],
        record_id=row[1],
        list_id=row[2],
        ticket_id=row[3],
        token_generation=row[4],
        direction=Direction(row[5]),
        decision=Verdict(row[6]),
        reason=Reason(row[7]),
        device_ms=row[8],
        clock_offset_ms=row[9],
        gate=row[10],
        scanner_did=row[11],
        manual_reason=row[12],
    )


class SqliteDeskStore:
    """The SQLite file of one desk (the core's :class:`~scanner_app.core.ports.DeskStore`). Used
    from one thread (the desk's event loop)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
        private_file(self.path)
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(SCHEMA)
        if "manual_reason" not in {row[1] for row in db.execute("PRAGMA table_info(records)")}:
            db.execute("ALTER TABLE records ADD COLUMN manual_reason TEXT")  # a store of an older desk
        for suffix in ("-wal", "-shm"):
            if (side := Path(f"{self.path}{suffix}")).exists():
                side.chmod(0o600)
        self._forget_ticket_ids(db)
        return db

    @staticmethod
    def _forget_ticket_ids(db: sqlite3.Connection) -> None:
        """Records an older desk kept with ticket ids now name their ticket by reference."""
        held = db.execute("SELECT seq, ticket_id FROM records WHERE ticket_id IS NOT NULL").fetchall()
        clear = [(ticket_ref(ticket), seq) for seq, ticket in held if not is_ticket_ref(ticket)]
        if clear:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("UPDATE records SET ticket_id = ? WHERE seq = ?", clear)
            db.execute("COMMIT")
            SqliteDeskStore._scrub(db)

    @staticmethod
    def _scrub(db: sqlite3.Connection) -> None:
        """Rewrite the file without the pages that held what was replaced."""
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, committed (and synced to disk) when the block ends."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def wipe(self) -> None:
        """Delete everything (a revoked device): the file is removed, not just emptied."""
        self._db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self._db = self._connect()

    # Enrollment and the door staff's choices.

    def setting(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put_settings(self, values: Mapping[str, str | None]) -> None:
        with self._write() as db:
            for key, value in values.items():
                if value is None:
                    db.execute("DELETE FROM meta WHERE key = ?", (key,))
                else:
                    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def enrollment(self) -> DeskEnrollment | None:
        text = self.setting("enrollment")
        if text is None:
            return None
        data = json.loads(text)
        data.pop("credential", None)  # kept in clear by older desks: see take_clear_credential
        data["lists"] = tuple(ListInfo(**item) for item in data["lists"])
        return DeskEnrollment(**data)

    def save_enrollment(self, enrollment: DeskEnrollment, sealed_credential: str) -> None:
        """The enrollment, and its credential sealed (:func:`scanner_app.io.vault.seal`)."""
        data = {
            "server_url": enrollment.server_url,
            "device_id": enrollment.device_id,
            "device_name": enrollment.device_name,
            "environment": enrollment.environment,
            "event_id": enrollment.event_id,
            "lists": [{"id": item.id, "name": item.name} for item in enrollment.lists],
        }
        self.put_settings({"enrollment": json.dumps(data), "credential": sealed_credential})

    def take_clear_credential(self) -> str | None:
        """The credential an older desk kept in clear in its enrollment, if any (for sealing)."""
        text = self.setting("enrollment")
        return None if text is None else json.loads(text).get("credential")

    def seal_credential(self, sealed_credential: str) -> None:
        """Replace a clear credential by its sealed form, leaving no page that held it."""
        enrollment = self.enrollment()
        assert enrollment is not None
        self.save_enrollment(enrollment, sealed_credential)
        self._scrub(self._db)

    # Offline bundles.

    def bundles(self) -> dict[str, BundleState]:
        rows = self._db.execute("SELECT list_id, body, seq, issued_at_ms FROM bundles")
        return {row[0]: BundleState(json.loads(row[1]), row[2], row[3]) for row in rows}

    def entries(self, list_id: str) -> dict[bytes, bytes]:
        rows = self._db.execute("SELECT lookup, entry FROM ticket_entries WHERE list_id = ?", (list_id,))
        return {bytes(lookup): bytes(entry) for lookup, entry in rows}

    def save_bundle(
        self, list_id: str, state: BundleState, entries: Mapping[bytes, bytes], *, full: bool
    ) -> None:
        """Keep a verified bundle; ``entries`` are the index entries it changed (all of them when
        ``full``, which replaces the index)."""
        with self._write() as db:
            if full:
                db.execute("DELETE FROM ticket_entries WHERE list_id = ?", (list_id,))
            db.executemany(
                "INSERT OR REPLACE INTO ticket_entries (list_id, lookup, entry) VALUES (?, ?, ?)",
                [(list_id, lookup, entry) for lookup, entry in entries.items()],
            )
            db.execute(
                "INSERT OR REPLACE INTO bundles (list_id, body, seq, issued_at_ms) VALUES (?, ?, ?, ?)",
                (list_id, json.dumps(state.body), state.seq, state.issued_at_ms),
            )

    # Check-in records.

    def add_own(self, record: Record, undoes: str | None = None) -> bool:
        """This desk's record of a scan, pending upload: committed before anyone sees the result.
        Answers False when the record is here already: the server stored it first (an online
        check-in carries the desk's record id) and a background pull brought it back before this
        write, so it is neither stored twice nor sent again."""
        with self._write() as db:
            cursor = db.execute(_INSERT, _row(record, undoes))
            if cursor.rowcount != 1:
                return False
            db.execute("INSERT INTO pending (seq) VALUES (?)", (cursor.lastrowid,))
        return True

    def add_records(
        self, records: Iterable[Record], *, pending: bool, cursor: tuple[str, str, int] | None = None
    ) -> list[Record]:
        """Records learnt from elsewhere (pulled, or uploaded to this desk as a hub), and the pull
        cursor ``(peer, list id, cursor)`` that follows them, in one transaction. ``pending``: they
        still have to go upstream. Answers the records that were new here."""
        new: list[Record] = []
        with self._write() as db:
            for record in records:
                inserted = db.execute(_INSERT, _row(record))
                if inserted.rowcount == 1:
                    new.append(record)
                    if pending:
                        db.execute("INSERT INTO pending (seq) VALUES (?)", (inserted.lastrowid,))
            if cursor is not None:
                db.execute("INSERT OR REPLACE INTO cursors (peer, list_id, cursor) VALUES (?, ?, ?)", cursor)
        return new

    def records(self) -> list[Record]:
        """Every record, in the order it reached this desk."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM records ORDER BY seq")  # noqa: S608
        return [_record(row) for row in rows]

    def pending(self) -> list[Record]:
        query = f"SELECT {_COLUMNS} FROM records JOIN pending USING (seq) ORDER BY seq"  # noqa: S608
        rows = self._db.execute(query)
        return [_record(row) for row in rows]

    def acknowledge(self, keys: Iterable[RecordKey]) -> None:
        """The upstream has these records (stored, already there, or refused for good)."""
        with self._write() as db:
            db.executemany(
                "DELETE FROM pending WHERE seq = "
                "(SELECT seq FROM records WHERE device_id = ? AND record_id = ?)",
                [(key.device_id, key.record_id) for key in keys],
            )

    def cursors(self) -> dict[tuple[str, str], int]:
        rows = self._db.execute("SELECT peer, list_id, cursor FROM cursors")
        return {(peer, list_id): cursor for peer, list_id, cursor in rows}

    def last_own_admission(self, device_id: str) -> OwnAdmission | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS}, undoes, EXISTS (SELECT 1 FROM records AS later"  # noqa: S608
            " WHERE later.device_id = records.device_id AND later.undoes = records.record_id)"
            " FROM records WHERE device_id = ? AND decision = 'admit' ORDER BY seq DESC LIMIT 1",
            (device_id,),
        ).fetchone()
        if row is None:
            return None
        return OwnAdmission(_record(row[:13]), row[13] is not None, bool(row[14]))

    def undos(self, device_id: str) -> dict[str, str]:
        """This desk's undo records: the id of each, and the id of the record it undid."""
        rows = self._db.execute(
            "SELECT record_id, undoes FROM records WHERE device_id = ? AND undoes IS NOT NULL", (device_id,)
        )
        return dict(rows.fetchall())
