"""The report's files are safe and intact: the manifest matches the folder and links to the previous
day's (as verify-archive checks it), no file holds an e-mail address (the remediation lists under
`remediation/` included), and the page loads nothing from outside itself and runs no script
(`report_files_are_safe_and_intact`)."""

import re
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

from assets.reports.archive import verify_day
from assets.reports.csvsafe import report_file_holds_email
from assets.reports.publish import HTML_FILE, MANIFEST_FILE, REPORT_FILES, shown_path
from assets.reports.remediation import REMEDIATION_DIR
from checks.gx.runner import SuiteOutcome, assertion

#: A URL with a scheme (https:, data:, javascript:) or network-path (//host; browsers read \\ as /).
EXTERNAL_URL = re.compile(r"\s*(?:[a-z][a-z0-9+.-]*:|[/\\]{2})", re.IGNORECASE)
#: CSS that would make the page fetch something: url() with such a URL, or @import.
EXTERNAL_CSS = re.compile(r"""url\(\s*["']?\s*(?:[a-z][a-z0-9+.-]*:|[/\\]{2})|@import""", re.IGNORECASE)
#: Attributes whose value is a URL the browser fetches or follows.
URL_ATTRIBUTES = frozenset(
    {"src", "href", "action", "formaction", "data", "poster", "background", "cite", "longdesc", "manifest"}
    | {"ping", "xlink:href", "codebase", "archive", "icon", "lowsrc", "dynsrc"}
)
SRCSET_ATTRIBUTES = frozenset({"srcset", "imagesrcset"})


class _PageReferences(HTMLParser):
    """The page's external references, read as a browser reads it: URL attributes, srcset
    candidates, style attributes and <style> elements. Text is data, and not looked at: a value
    such as `@import` or `src=http://x` (a message id, a rejected line's reason) is shown
    HTML-escaped, loads nothing, and must not fail every night it stays in the report."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.external: list[str] = []
        self._style_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            value = value or ""
            if name in URL_ATTRIBUTES and EXTERNAL_URL.match(value):
                self.external.append(f"<{tag} {name}>")
            elif name in SRCSET_ATTRIBUTES and any(
                EXTERNAL_URL.match(candidate) for candidate in value.split(",") if candidate.strip()
            ):
                self.external.append(f"<{tag} {name}>")
            elif name == "style" and EXTERNAL_CSS.search(value):
                self.external.append(f"<{tag} style>")
        if tag == "style":
            self._style_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "style" and self._style_depth:
            self._style_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._style_depth and EXTERNAL_CSS.search(data):
            self.external.append("<style>")


def external_references(page: str) -> list[str]:
    """Where the page would fetch something from outside itself (empty: nowhere)."""
    parser = _PageReferences()
    parser.feed(page)
    parser.close()
    return parser.external


def _not_matching(folder: Path) -> list[str]:
    """The files of the day's folder that do not match its manifest, or its link to the previous
    day's manifest, as verify-archive sees them (``assets/reports/archive.py``), shown safely."""
    try:
        day = date.fromisoformat(folder.name)
    except ValueError:
        return [MANIFEST_FILE]
    return sorted({shown_path(p.name) for p in verify_day(folder.parent, day).problems})


def evaluate_files(folder: Path) -> tuple[SuiteOutcome, list[str]]:
    contents = {name: (folder / name).read_bytes() for name in REPORT_FILES if (folder / name).is_file()}
    tampered = sorted(set(_not_matching(folder)) | {n for n in REPORT_FILES if n not in contents})
    # Real addresses only, in the form each file's format gives them (csvsafe: the formula guard
    # of `@SUM(1+1)`, `'@SUM(1+1)`, is not an address; a false alarm here would fail every night).
    lists = {f"{REMEDIATION_DIR}/{p.name}": p.read_bytes() for p in sorted((folder / REMEDIATION_DIR).glob("*.csv"))}
    with_email = sorted(n for n, data in {**contents, **lists}.items() if report_file_holds_email(n, data))
    page = contents.get(HTML_FILE, b"").decode("utf-8", "replace")
    outcome = SuiteOutcome(
        "report_files",
        [
            assertion(
                "all four report files exist",
                len(contents) == len(REPORT_FILES),
                len(REPORT_FILES),
                len(REPORT_FILES) - len(contents),
            ),
            assertion(
                "MANIFEST.sha256 matches every file and the previous day's manifest",
                not tampered,
                len(REPORT_FILES),
                len(tampered),
            ),
            assertion(
                "no report file holds an e-mail address", not with_email, len(contents) + len(lists), len(with_email)
            ),
            assertion("the page holds no script", "<script" not in page.lower()),
            assertion("the page references nothing outside itself", not external_references(page)),
            assertion(
                "the page forbids every request (Content-Security-Policy default-src 'none')",
                "default-src 'none'" in page,
            ),
        ],
    )
    return outcome, sorted(set(tampered) | set(with_email))
