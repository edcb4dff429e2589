"""Redaction of the retained inbox event files in place (CONTRACT 5): every identifier of an erased
subject leaves every line that holds it, the same night, and every line stays.

Which lines: the folders whose keys (``ops.inbox_keys``, refreshed by ``scan_inbox``) meet a target
(``_targets``, ``state.py``) are read again; the erased subjects' own lines (from the keyed history)
and the lines where the scan found a target otherwise (``ops.inbox_lines``) have their tokens cut as
the scan cuts them (``tokens.py``), hashed, and joined with the targets in DuckDB. Only the lines
that hold one are touched, in Python (``line_redaction.py``):

* a line that is JSON is parsed, every string (key or value) and number in which a target stands
  as a token gets it replaced; on the erased subject's own line (its ``userId`` is a target) the
  personal properties' values (names, address) become ``[erased]`` as well. When replacing the
  tokens where they stand in the line's text gives that same JSON, the rest of the line keeps its
  bytes (another subject's line loses the token only); otherwise the line is written back
  compactly, numbers as they were;
* any other line (it was rejected: not JSON, or not strict JSON) gets the tokens replaced in its
  text, unless it is the erased subject's own (its ``userId`` is a target): names or an address
  in it cannot be told apart, so it is replaced whole by ``[erased]``, as the warehouse clears the
  raw text of the subject's rejected lines;
* a line that still holds a target after that (an identifier written with escapes that its text
  does not show) is replaced whole by ``[erased]``, which is not JSON.

Replacements keep each value's kind, so every line keeps the verdict it had and the day's figures
stay exact when the file is ingested again: an account id becomes ``erased:<subject_key>``
(ingestion keys it by that subject_key, ``assets/landing/ingest.py``), an e-mail
``erased-<first 16 hex of its email_key>@erased.invalid`` (still an address). Replacements are the
same for the same identifier, so messageIds that were equal stay equal and distinct stay distinct;
a messageId whose replacements would take it across the contract's length limit is kept on its
side of it (``line_redaction._keep_message_id_verdict``).

Files are rewritten atomically (``assets/landing/inbox_files.py``); what changed is recorded in
``ops.inbox_redactions`` (file, line number, subject key, kind, count: never a value), and the
folder's cached keys follow the changed lines (``inbox_scan.cache_rewrite``), so that the verifier
does not read a redacted folder again. Folders of arrival days after the run's day are left to
their own run, so a re-run never changes a later day.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from assets.landing.inbox_files import Rewrite, arrival_day, finish_rewrites, inbox_folders, rewrite_files, visible
from assets.purge.inbox_scan import cache_rewrite, scan_inbox, tokens_of_lines
from assets.purge.line_redaction import ERASED_LINE, erased_whole, redact_line
from pipelines.warehouse import transaction


def account_replacement(subject_key: str) -> str:
    return f"erased:{subject_key}"


def email_replacement(email_key: str) -> str:
    return f"erased-{email_key[:16]}@erased.invalid"


@dataclass
class RedactionResult:
    files: int = 0
    lines: int = 0
    whole_lines: int = 0
    subjects: set[str] = field(default_factory=set)


# ---------------------------------------------------------------------------------------------
# Finding the lines
# ---------------------------------------------------------------------------------------------


def _folders_with_targets(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        f
        for (f,) in con.execute(
            """SELECT DISTINCT k.folder FROM ops.inbox_keys k
               JOIN _targets t ON t.kind = k.kind AND unhex(t.key) = k.key ORDER BY k.folder"""
        ).fetchall()
    ]


def _line_hits(
    con: duckdb.DuckDBPyConnection, lines: list[str], numbers: list[int], tokens: str
) -> dict[int, list[tuple[str, str, str, str]]]:
    """{line number: [(token, kind, key, subject_key)]} for the `lines` (numbered `numbers`) that hold a
    target, the tokens cut as the scan cuts them, the longest first. The tokens stay in TEMP `tokens`
    (``inbox_scan.tokens_of_lines``), for the folder's cache (``inbox_scan.cache_rewrite``)."""
    tokens_of_lines(con, lines, numbers, tokens)
    rows = con.execute(
        f"""
        WITH distinct_tokens AS (SELECT DISTINCT tok FROM {tokens}),
        keyed AS (  -- each distinct token is hashed once, however many lines hold it
            SELECT tok, 'account_id' AS kind, hmac_subject(tok) AS key FROM distinct_tokens
            UNION ALL
            SELECT tok, 'email', hmac_email(tok) FROM distinct_tokens
            WHERE contains(tok, '@') AND norm_email(tok) <> ''
        ), hits AS (
            SELECT k.tok, k.kind, k.key, t.subject_key
            FROM keyed k JOIN _targets t ON t.kind = k.kind AND t.key = k.key
        )
        SELECT DISTINCT l.n, h.tok, h.kind, h.key, h.subject_key
        FROM {tokens} l JOIN hits h USING (tok)
        ORDER BY l.n, length(h.tok) DESC, h.tok, h.subject_key
        """
    ).fetchall()
    hits: dict[int, list[tuple[str, str, str, str]]] = {}
    for n, tok, kind, key, subject_key in rows:
        hits.setdefault(n, []).append((tok, kind, key, subject_key))
    return hits


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def _decoded(path: Path) -> tuple[str, bool, bool] | None:
    """(text, gzip, as text only) of a file: bytes that are not UTF-8 kept as surrogate escapes, a
    file that is not UTF-8 or not a gzip stream redacted as text only, never parsed, so that it stays
    what it was (one unreadable file, CONTRACT 2.1)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    gz, as_text = False, False
    if path.name.endswith(".gz"):
        try:
            data, gz = gzip.decompress(data), True
        except (OSError, EOFError, zlib.error):
            as_text = True
    try:
        return data.decode("utf-8"), gz, as_text
    except UnicodeDecodeError:
        return data.decode("utf-8", "surrogateescape"), gz, True


def _encoded(text: str, gz: bool) -> bytes:
    data = text.encode("utf-8", "surrogateescape")
    # Level 1: the rewrite of every retained file holding an erased subject is on the night's
    # critical path. On six 6.8 MB day files of the 100k benchmark it takes 0.042 s a file against
    # 0.091 s at level 6 (zlib's default), for a file about a quarter larger (8.7 MB against 6.9 MB
    # for the six).
    return gzip.compress(data, compresslevel=1, mtime=0) if gz else data


@dataclass
class _File:
    """A retained file being redacted: its lines, and the targets found on them."""

    relative: str
    path: Path
    lines: list[str]
    gz: bool
    as_text: bool
    hits: dict[int, list[tuple[str, str, str, str]]] = field(default_factory=dict)


def _read(relative: str, path: Path) -> _File | None:
    decoded = _decoded(path)
    if decoded is None:
        return None
    text, gz, as_text = decoded
    return _File(relative, path, text.split("\n"), gz, as_text)


#: TEMP tables of the tokens of the file's lines being redacted, as they are and as they become.
_BEFORE, _AFTER = "_redaction_before", "_redaction_after"


def _hits_on(con: duckdb.DuckDBPyConnection, f: _File, numbers: list[int]) -> None:
    """f.hits for the lines of `numbers` (0-based); their tokens are left in TEMP _redaction_before."""
    numbers = [n for n in numbers if n < len(f.lines)]
    f.hits = _line_hits(con, [f.lines[n] for n in numbers], numbers, _BEFORE)


def _redacted(con: duckdb.DuckDBPyConnection, f: _File) -> tuple[list[str], list[tuple[int, str, str, int, bool]]]:
    """(new lines, [(line number, subject_key, kind, tokens replaced, whole line)]) of a file with hits;
    the new lines' tokens are left in TEMP _redaction_after."""
    changed: dict[int, str] = {}
    for n, found in f.hits.items():
        replacements: dict[str, str] = {}
        own: set[str] = set()
        for tok, kind, key, _subject in found:
            if kind == "account_id":
                replacements[tok] = account_replacement(key)
                own.add(tok)
            else:
                replacements.setdefault(tok, email_replacement(key))
        changed[n] = redact_line(f.lines[n], replacements, own, as_text=f.as_text)
    order = sorted(changed)
    # Verify: a line that still holds a target (an escape its text hides) is replaced whole.
    whole = set(_line_hits(con, [changed[n] for n in order], order, _AFTER))
    whole |= {n for n in order if erased_whole(changed[n])}
    if whole:
        replaced = sorted(whole)
        con.execute(f"DELETE FROM {_AFTER} WHERE n IN (SELECT unnest(?::BIGINT[]))", [replaced])
        tokens_of_lines(con, [ERASED_LINE] * len(replaced), replaced, "_redaction_whole")
        con.execute(f"INSERT INTO {_AFTER} SELECT * FROM _redaction_whole")
        con.execute("DROP TABLE _redaction_whole")
    records: list[tuple[int, str, str, int, bool]] = []
    lines = list(f.lines)
    for n in order:
        lines[n] = ERASED_LINE if n in whole else changed[n]
        counts: dict[tuple[str, str], int] = {}
        for _tok, kind, _key, subject_key in f.hits[n]:
            counts[(subject_key, kind)] = counts.get((subject_key, kind), 0) + 1
        records += [
            (n + 1, subject_key, kind, count, n in whole) for (subject_key, kind), count in sorted(counts.items())
        ]
    return lines, records


def _own_lines(con: duckdb.DuckDBPyConnection, folder: str) -> dict[str, list[int]]:
    """{file name: 0-based line numbers} of the erased subjects' own lines in an arrival folder,
    from the keyed history (accepted and rejected lines keyed by their userId)."""
    day = arrival_day(folder)
    if day is None:
        return {}
    own: dict[str, list[int]] = {}
    for name, line in con.execute(
        """SELECT source_file, line_number FROM keyed.events
           WHERE arrival_date = $day AND subject_key IN (SELECT subject_key FROM _erased)
           UNION
           SELECT source_file, line_number FROM keyed.rejected
           WHERE arrival_date = $day AND line_number > 0 AND subject_key IN (SELECT subject_key FROM _erased)
           ORDER BY ALL""",
        {"day": day},
    ).fetchall():
        own.setdefault(name, []).append(line - 1)
    return own


def _foreign_lines(con: duckdb.DuckDBPyConnection, folder: str) -> dict[str, list[int]]:
    """{file path: 0-based line numbers} of the other lines of a folder that hold a target: where the
    folder's scan found it (``ops.inbox_lines``)."""
    where: dict[str, list[int]] = {}
    for path, line in con.execute(
        """SELECT DISTINCT l.path, l.line_number FROM ops.inbox_lines l
           JOIN _targets t ON t.kind = l.kind AND unhex(t.key) = l.key
           WHERE l.folder = ? ORDER BY ALL""",
        [folder],
    ).fetchall():
        where.setdefault(path, []).append(line - 1)
    return where


def _find_lines(con: duckdb.DuckDBPyConnection, folder: str, files: list[tuple[str, Path]]) -> Iterator[_File]:
    """The folder's files with the lines that hold a target, one at a time (the lines' tokens are in
    TEMP _redaction_before until the next): the erased subjects' own lines, known from the keyed
    history, and the lines where the folder's scan found a target otherwise
    (``inbox_scan._foreign_sql``). Only those lines are tokenised again, to find what to replace."""
    own = _own_lines(con, folder)
    foreign = _foreign_lines(con, folder)
    for relative, path in files:
        f = _read(relative, path)
        if f is None:
            continue
        name = f.relative.split("/", 1)[1] if "/" in f.relative else f.relative
        _hits_on(con, f, sorted(set(own.get(name, [])) | set(foreign.get(f.relative, []))))
        if f.hits:
            yield f


_RECORD_COLUMNS = ("run_date", "folder", "path", "line_number", "subject_key", "kind", "replaced", "whole_line")


def _insert_records(con: duckdb.DuckDBPyConnection, recorded: list[tuple]) -> None:
    """ops.inbox_redactions rows in one set-based INSERT (a row-by-row executemany costs seconds per
    thousand rows)."""
    rows = pa.table({name: [r[i] for r in recorded] for i, name in enumerate(_RECORD_COLUMNS)})
    con.register("_redaction_records", rows)
    try:
        con.execute(
            f"""INSERT INTO ops.inbox_redactions ({", ".join(_RECORD_COLUMNS)}, redacted_at)
                SELECT {", ".join(_RECORD_COLUMNS)}, now() FROM _redaction_records"""
        )
    finally:
        con.unregister("_redaction_records")


def redact_inbox(con: duckdb.DuckDBPyConnection, inbox: Path, day: date) -> RedactionResult:
    """Redact every retained inbox file (of folders visible on `day`) that holds a target of _targets."""
    result = RedactionResult()
    finish_rewrites(con, inbox)
    scan_inbox(con, inbox, day)
    folders = inbox_folders(inbox)
    for folder in _folders_with_targets(con):
        if folder not in folders or not visible(folder, day):
            continue
        rewrites: list[Rewrite] = []
        recorded: list[tuple] = []
        for f in _find_lines(con, folder, folders[folder]):
            lines, records = _redacted(con, f)
            changed = [n for n in sorted(f.hits) if lines[n] != f.lines[n]]
            keys = cache_rewrite(con, folder, f.relative, changed, _BEFORE, _AFTER)
            rewrites.append(Rewrite(f.relative, f.path, _encoded("\n".join(lines), f.gz), keys))
            recorded += [(day, folder, f.relative, *r) for r in records]
        if not rewrites:
            continue
        with transaction(con):
            con.execute(
                "DELETE FROM ops.inbox_redactions WHERE run_date = ? AND path IN (SELECT unnest(?::VARCHAR[]))",
                [day, [r.relative for r in rewrites]],
            )
            _insert_records(con, recorded)
        rewrite_files(con, day, rewrites)
        result.files += len(rewrites)
        result.lines += len({(r[2], r[3]) for r in recorded})
        result.whole_lines += len({(r[2], r[3]) for r in recorded if r[7]})
        result.subjects |= {r[4] for r in recorded}
    for table in (_BEFORE, _AFTER):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return result
