"""How compliance.erasure_register.residual_locations lists places: one text, robust to any system name.

``residual_locations`` is the sorted list of location tokens joined with ``,`` (NULL when none),
e.g. ``crm,inbox,marketing_list``. A token is:

* ``warehouse`` or ``inbox``: the pipeline's own copies;
* a downstream system's name (CONTRACT 2.2: the folder's name, whatever its characters), with
  ``%`` and ``,`` percent-encoded (``%25``, ``%2C``) so that the separator never appears inside a
  token; a system literally named ``warehouse`` or ``inbox`` also has its first character encoded
  (``%77arehouse``), so it is never taken for the pipeline's own copy.

Plain names (``crm``, ``legacy crm``, ``účetnictví``, ``=cmd``) are unchanged. Splitting on ``,``
and percent-decoding each token (`parse`, or SQL ``url_decode``) gives the names back exactly.
Every consumer splits with `split_sql` / `parse`; never with a hand-written ``string_split``.
The report shows the stored text as is: HTML-escaped in the page, formula-guarded in the CSV.
"""

from __future__ import annotations

from urllib.parse import unquote

from pipelines.safe_text import system_label

SEPARATOR = ","
PIPELINE_LOCATIONS = ("warehouse", "inbox")


def encode_system(system: str) -> str:
    """The residual_locations token of a downstream system."""
    token = system.replace("%", "%25").replace(SEPARATOR, "%2C")
    if token in PIPELINE_LOCATIONS:
        token = f"%{ord(token[0]):02X}{token[1:]}"
    return token


def join(tokens: list[str]) -> str | None:
    return SEPARATOR.join(sorted(set(tokens))) or None


def parse(residual_locations: str | None) -> list[tuple[str, bool]]:
    """(name, is the pipeline's own copy) for each location of a residual_locations text."""
    if not residual_locations:
        return []
    return [
        (token, True) if token in PIPELINE_LOCATIONS else (unquote(token), False)
        for token in residual_locations.split(SEPARATOR)
        if token
    ]


def encode_system_sql(expr: str) -> str:
    """SQL for encode_system(expr)."""
    token = f"replace(replace({expr}, '%', '%25'), '{SEPARATOR}', '%2C')"
    pipeline = ", ".join(f"'{p}'" for p in PIPELINE_LOCATIONS)
    return (
        f"CASE WHEN {token} IN ({pipeline}) "
        f"THEN '%' || upper(to_hex(ord(left({token}, 1)))) || substr({token}, 2) ELSE {token} END"
    )


def split_sql(expr: str) -> str:
    """SQL: the list of tokens of a residual_locations text (empty for NULL)."""
    return f"list_filter(string_split(coalesce({expr}, ''), '{SEPARATOR}'), lambda t: t <> '')"


def is_pipeline_sql(token: str) -> str:
    return f"{token} IN ({', '.join(repr(p) for p in PIPELINE_LOCATIONS)})"


def decode_sql(token: str) -> str:
    """SQL: the location's name (a system's folder name, or warehouse / inbox) from its token."""
    return f"CASE WHEN {is_pipeline_sql(token)} THEN {token} ELSE coalesce(try(url_decode({token})), {token}) END"


def shown_location(location: tuple[str, bool]) -> str:
    """A parsed location for logs and Dagster metadata: a system's name only if it is machine-made
    (else its keyed label, ``safe_text.system_label``; ``system:warehouse`` for a system so named);
    the pipeline's own copies as ``warehouse`` / ``inbox``."""
    name, pipeline = location
    if pipeline:
        return name
    return f"system:{name}" if name in PIPELINE_LOCATIONS else system_label(name)
