"""Migration 0003: a warehouse made before the identity vault is upgraded in place on its first open
by the new code. The contract's tables read the same rows, the history keeps no identifier, and the
night's compaction leaves none of the old bytes in the warehouse file. Migration 0004: the purge
log's counts of vault tables are kept in the vault too, so a re-run of an older day keeps them."""

from __future__ import annotations

import importlib
import json
import uuid
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.keys import email_key, subject_key
from pipelines.warehouse import connect, migrations, vault_path
from tests.helpers import created, deleted, night, text_columns

OLD_SCHEMA = (Path(__file__).parent / "fixtures" / "schema_before_vault.sql").read_text(encoding="utf-8")
CONTRACT_TABLES = (
    "landing.events",
    "landing.rejected",
    "core.accounts",
    "core.consent_history",
    "core.club_membership",
    "compliance.violations",
)


def _secret(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def build_old_warehouse(env) -> dict[str, str]:
    """A warehouse as the code before the vault left it after a few nights: a live customer with
    identifiers in events, a rejected line and the core tables; an erased one, purged from the
    tables, whose e-mail is still in the file's free blocks (no compaction since its purge)."""
    live, gone = _secret("acc_live_"), _secret("acc_gone_")
    ids = {
        "live": live,
        "live_mail": f"{_secret('zq')}@example.cz",
        "live_name": _secret("Zdena"),
        "live_street": _secret("Ulice "),
        "gone": gone,
        "gone_mail": f"{_secret('zq')}@example.cz",
    }
    k_live, k_gone = subject_key(env.key, live), subject_key(env.key, gone)
    con = duckdb.connect(str(env.warehouse))
    try:
        con.execute("SET TimeZone = 'Europe/Prague'")
        con.execute(OLD_SCHEMA)
        con.execute(
            "INSERT INTO ops.schema_migrations VALUES (1, 'landing_files_problem', now()), "
            "(2, 'inbox_keys_as_bytes', now())"
        )
        created = json.dumps({"email": ids["live_mail"], "first_name": ids["live_name"]})
        address = json.dumps({"street": ids["live_street"], "postal_code": "11000", "country": "CZ"})
        live_key, gone_key = email_key(env.key, ids["live_mail"]), email_key(env.key, ids["gone_mail"])
        gone_created = json.dumps({"email": ids["gone_mail"]})
        consent = '{"notice_version": "v1"}'
        events = [
            ("m-1", "Account Created", live, k_live, "2026-11-02 09:00+01", created, None, live_key),
            ("m-2", "Address Changed", live, k_live, "2026-11-02 09:05+01", address, None, None),
            ("m-3", "Marketing Consent Granted", live, k_live, "2026-11-02 09:10+01", consent, True, None),
            ("m-4", "Account Created", gone, k_gone, "2026-11-02 09:20+01", gone_created, None, gone_key),
            ("m-5", "Account Deleted", gone, k_gone, "2026-11-03 10:00+01", "{}", None, None),
        ]
        for i, (mid, name, acc, key, ts, props, granted, ekey) in enumerate(events, start=1):
            con.execute(
                """INSERT INTO landing.events VALUES (?, ?, ?, ?, ?, 'web', NULL, ?, ?, ?, NULL, 'part-0000.jsonl', ?,
                                                      ?)""",
                [mid, name, acc, key, ts, props, granted, ekey, i, date(2026, 11, 2) if i < 5 else date(2026, 11, 3)],
            )
        con.execute(
            """INSERT INTO landing.rejected VALUES
               ('part-0000.jsonl', 6, 'invalid_json', ?, '2026-11-02', ?, ?, NULL, false),
               ('part-0000.jsonl', 7, 'missing_field:event', ?, '2026-11-02', ?, ?, 'r-7', false),
               ('broken.jsonl.gz', 0, 'unreadable_file', NULL, '2026-11-02', NULL, NULL, NULL, false)""",
            [
                f'{{"userId": "{live}", "email": "{ids["live_mail"]}"',
                live,
                k_live,
                f'{{"userId": "{gone}"}}',
                gone,
                k_gone,
            ],
        )
        con.execute(
            "INSERT INTO core.accounts VALUES (?, ?, '2026-11-02 09:00+01', 'active', ?, NULL)",
            [live, k_live, email_key(env.key, ids["live_mail"])],
        )
        con.execute(
            """INSERT INTO core.consent_history VALUES
               (?, ?, '2026-11-02 09:10+01', true, NULL, 'v1', 'm-3', 'Marketing Consent Granted', 'web', 1,
                '2026-11-02', 'part-0000.jsonl', 3)""",
            [live, k_live],
        )
        con.execute(
            "INSERT INTO core.club_membership VALUES (?, ?, '2026-11-02 09:10+01', NULL, NULL, 'm-3', NULL)",
            [live, k_live],
        )
        con.execute(
            """INSERT INTO compliance.violations VALUES
               ('care_hours_email_change', 'medium', ?, ?, '2026-11-02 09:00+01', '2026-11-02', 'm-1', NULL, 'x'),
               ('activity_after_deletion', 'high', ?, ?, '2026-11-03 11:00+01', '2026-11-03', 'm-9', NULL, 'y')""",
            [k_live, live, k_gone, gone],
        )
        con.execute("CHECKPOINT")
        # the purge of the night of the deletion, as the old code did it: UPDATEs in place
        con.execute("UPDATE landing.events SET account_id = NULL, properties = '{}' WHERE subject_key = ?", [k_gone])
        con.execute(
            "UPDATE landing.rejected SET raw_line = NULL, account_id = NULL, purged = true WHERE subject_key = ?",
            [k_gone],
        )
        con.execute("UPDATE compliance.violations SET account_id = NULL WHERE subject_key = ?", [k_gone])
        con.execute(
            "INSERT INTO compliance.erased_identifiers VALUES (?, 'account_id', ?), (?, 'email', ?)",
            [k_gone, k_gone, k_gone, email_key(env.key, ids["gone_mail"])],
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return ids


def _rows(con, table: str) -> list[tuple]:
    return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def _old_rows(database: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        con.execute("SET TimeZone = 'Europe/Prague'")
        return {t: _rows(con, t) for t in CONTRACT_TABLES}
    finally:
        con.close()


def test_an_old_warehouse_moves_its_identifiers_into_the_vault_on_its_first_open(env):
    ids = build_old_warehouse(env)
    before = _old_rows(env.warehouse)
    assert ids["gone_mail"].encode() in env.warehouse.read_bytes()  # free blocks: there before the upgrade

    with connect(env.warehouse, env.key) as con:
        # the contract's tables read exactly what they held, now through the vault
        assert {t: _rows(con, t) for t in CONTRACT_TABLES} == before
        kinds = dict(
            con.execute(
                """SELECT table_schema || '.' || table_name, table_type FROM information_schema.tables
                   WHERE table_catalog = current_database()"""
            ).fetchall()
        )
        assert {kinds[t] for t in CONTRACT_TABLES} == {"VIEW"}
        # the history's tables hold no identifier; the vault holds the live customer's only
        history = " ".join(
            str(v)
            for name, table, column in text_columns(con)
            if not name.startswith("vault.")
            for (v,) in con.execute(f'SELECT "{column}"::VARCHAR FROM {table}').fetchall()
        )
        vault = " ".join(
            str(v)
            for name, table, column in text_columns(con)
            if name.startswith("vault.")
            for (v,) in con.execute(f'SELECT "{column}"::VARCHAR FROM {table}').fetchall()
        )
        for value in ids.values():
            assert value not in history, value
        for value in ("live", "live_mail", "live_name", "live_street"):
            assert ids[value] in vault, value
        assert ids["gone"] not in vault and ids["gone_mail"] not in vault
        # the old file's free blocks still hold identifiers: its compaction is requested
        assert con.execute("SELECT database FROM ops.compaction_due").fetchall() == [("warehouse",)]
        assert 3 in {v for (v,) in con.execute("SELECT version FROM ops.schema_migrations").fetchall()}

    # opened again: the migration does not run twice, nothing is duplicated
    with connect(env.warehouse, env.key) as con:
        assert {t: _rows(con, t) for t in CONTRACT_TABLES} == before
        assert con.execute("SELECT count(*) FROM vault.accounts").fetchall() == [(1,)]


def test_the_first_night_after_the_upgrade_leaves_no_old_bytes_in_the_warehouse_file(env):
    ids = build_old_warehouse(env)
    assert (
        ids["gone_mail"].encode() in env.warehouse.read_bytes() and ids["live"].encode() in env.warehouse.read_bytes()
    )
    compaction = dg.AssetSelection.assets(["compaction", "warehouse_compaction"])
    result = env.run("2026-11-04", selection=compaction.without_checks())
    assert result.success

    warehouse = env.warehouse.read_bytes()
    for value in ids.values():
        assert value.encode() not in warehouse, value  # the warehouse file keeps keys only
    vault = vault_path(env.warehouse).read_bytes()
    assert ids["live"].encode() in vault and ids["live_mail"].encode() in vault
    assert ids["gone_mail"].encode() not in vault and ids["gone"].encode() not in vault
    with connect(env.warehouse, env.key) as con:
        assert con.execute("SELECT count(*) FROM ops.compaction_due").fetchall() == [(0,)]
        assert con.execute("SELECT account_id FROM core.accounts").fetchall() == [(ids["live"],)]


def test_an_upgrade_cut_short_after_the_vault_was_filled_is_finished_by_the_next_open(env, monkeypatch):
    ids = build_old_warehouse(env)
    before = _old_rows(env.warehouse)
    module = importlib.import_module("pipelines.warehouse.migrations.0003_identity_vault")

    def killed(con):
        raise RuntimeError("killed between the vault and the history")

    monkeypatch.setattr(module, "migrate", killed)
    with pytest.raises(RuntimeError):
        with connect(env.warehouse, env.key):
            pass
    monkeypatch.undo()
    con = duckdb.connect(str(env.warehouse), read_only=True)
    try:  # the history is untouched: still the old tables, the migration not recorded
        assert con.execute("SELECT count(*) FROM landing.events WHERE account_id = ?", [ids["live"]]).fetchall() == [
            (3,)
        ]
        assert 3 not in {v for (v,) in con.execute("SELECT version FROM ops.schema_migrations").fetchall()}
    finally:
        con.close()
    with connect(env.warehouse, env.key) as con:
        assert {t: _rows(con, t) for t in CONTRACT_TABLES} == before
        assert con.execute("SELECT count(*) FROM vault.accounts").fetchall() == [(1,)]
        assert con.execute("SELECT count(*) FROM vault.event_properties").fetchall() == [(2,)]
        assert con.execute("SELECT count(*) FROM vault.quarantine").fetchall() == [(2,)]
    assert 3 in [m.version for m in migrations.available()]


def test_the_vault_counts_of_an_older_purge_log_are_kept_across_a_rerun_of_their_day(env):
    """Migration 0004: vault.purge_counts is seeded from compliance.purge_log."""
    account = _secret("acc_")
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl",
        [
            created(account, "2026-11-02T09:00:00+01:00", f"{_secret('zq')}@example.cz"),
            deleted(account, "2026-11-02T18:00:00+01:00"),
        ],
    )
    night(env, "2026-11-02")
    logged = env.query("SELECT table_name, rows_purged FROM compliance.purge_log ORDER BY ALL")
    assert logged == [("vault.accounts", 1), ("vault.event_properties", 1)]
    with env.connect() as con:  # as a warehouse made before 0004 left it: the counts in the log only
        con.execute("DELETE FROM vault.purge_counts")
        con.execute("DELETE FROM ops.schema_migrations WHERE version = 4")

    with env.connect() as con:
        assert con.execute("SELECT table_name, rows_purged FROM vault.purge_counts ORDER BY ALL").fetchall() == logged
    night(env, "2026-11-02")  # a re-run of the day purges nothing more and keeps the day's counts

    assert env.query("SELECT table_name, rows_purged FROM compliance.purge_log ORDER BY ALL") == logged
    with env.connect() as con:  # boundary: the migration runs once; a second open copies nothing twice
        assert con.execute("SELECT count(*) FROM vault.purge_counts").fetchall() == [(2,)]
