"""Deterministic synthetic inbox generator.  A test and demo tool: not part of the pipeline's runtime.

Writes a landing zone in the shape of CONTRACT.md section 2:

* ``<out>/events/<YYYY-MM-DD>/part-NNNN.jsonl[.gz]`` - Segment "track" lines,
  the folder date being the arrival day (Europe/Prague calendar day);
* ``<out>/snapshots/<system>/<YYYY-MM-DD>.csv`` - full end-of-day exports of
  ``crm``, ``marketing_list`` and ``club_roster``;
* ``<out>/_plan/plan.json`` - the ground truth (counts, planted violations,
  deletions, re-registrations).  It holds account ids and message ids only,
  never an e-mail address, a name or a postal address.  The pipeline never
  reads it.

Outside the planted defects the activity is contract-valid and rule-clean
(POLICY.md).  Every planted violation breaks exactly one rule.

Same arguments and seed give byte-identical output: accounts are simulated in
fixed-size chunks, each with its own ``random.Random`` seeded from
``(seed, chunk index)``, and chunk results are written strictly in chunk
order whatever the number of worker processes.

Design notes
------------
* Times are integer epoch seconds internally; every account's events are
  strictly increasing in time, at least a few seconds apart, so consent, reset
  and deletion comparisons never tie.  No event is ever placed exactly on a
  local midnight.
* Late arrival (folder = occurrence day + 1) is restricted to ``Signed In``
  and ``Address Changed`` (no rule impact), plus a few events of deleted
  accounts that occurred before the deletion but arrive after its folder
  (``late_events_after_deletion`` in the plan).
* Bad lines and duplicates are *extra* lines next to the accepted ones, so the
  simulated state is exactly the state of the accepted events.
* Exports are built from per-account "segments" (first day, last day
  exclusive, CSV row); a downstream lag keeps erased accounts for a while.
  Export-based planted violations are evaluated against consent at the end of
  the export's own date.

Modules, by what they simulate or write:

* ``calendar``: local days, DST, Customer Care hours, CZ holidays;
* ``contract``, ``reference``, ``encoding``: names from the contract, names and
  places accounts are drawn from (hostile values included), literal encoders;
* ``chunk``: a chunk of accounts, the simulation class composed of
  ``accounts`` (lifecycle), ``events`` (the event stream), ``care``,
  ``consent``, ``marketing``, ``planted`` (rule violations), ``bad_lines`` and
  ``exports``;
* ``writer`` (event and export files), ``plan`` (the ground truth),
  ``inbox`` (:func:`generate`), ``cli`` (the command-line options).
"""

from __future__ import annotations

from generator.calendar import due_date_for
from generator.cli import add_arguments, main_from_args
from generator.contract import EVENT_RULES, EXPORT_RULES, REJECT_REASONS, SYSTEMS, UNREADABLE_FILE_REASON
from generator.inbox import generate
from generator.reference import (
    HOSTILE_CAMPAIGN,
    HOSTILE_CITY,
    HOSTILE_FIRST_NAME,
    HOSTILE_LAST_NAME,
    HOSTILE_SOURCE,
)

__all__ = [
    "generate",
    "add_arguments",
    "main_from_args",
    "due_date_for",
    "REJECT_REASONS",
    "EVENT_RULES",
    "EXPORT_RULES",
    "SYSTEMS",
    "UNREADABLE_FILE_REASON",
    "HOSTILE_CAMPAIGN",
    "HOSTILE_CITY",
    "HOSTILE_FIRST_NAME",
    "HOSTILE_LAST_NAME",
    "HOSTILE_SOURCE",
]
