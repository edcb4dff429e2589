"""The subject's file in Dagster: the op ``write_subject_file`` of the job ``subject_file``, run from the
UI's launchpad.

Its run config takes the subject's key (``subject_key``, or its first 12 or more hex digits as the
report and the CSVs show it), never an account id or an e-mail: a run's config is stored in the
Dagster instance (DAGSTER_HOME), which must hold no personal data. To start from an account id or an
e-mail, use the CLI (``python -m pipelines subject``), which reads it from standard input and keeps
only its keys. The op's logs and metadata hold keys, counts and the files' names (key prefixes).
"""

import dagster as dg
from pydantic import Field

from assets.defaults import POOL
from pipelines.evidence.page import publish
from pipelines.evidence.subject import Ambiguous, Lookup, NotFound
from pipelines.resources import ComplianceSettings, Warehouse


class SubjectFileConfig(dg.Config):
    subject_key: str = Field(
        description="The subject's key: its subject_key (64 hex digits) or the first 12 or more of them, "
        "as the report and its CSVs show it. Never an account id or an e-mail: run config is stored."
    )


@dg.op(pool=POOL, out=dg.Out(dg.Nothing))
def write_subject_file(
    context: dg.OpExecutionContext, config: SubjectFileConfig, warehouse: Warehouse, settings: ComplianceSettings
):
    """Write one subject's file (<reports>/subjects/<key prefix>.html and .json) as of the last processed day."""
    try:
        with warehouse.get_connection() as con:
            written = publish(con, warehouse.hash_key, Lookup("subject_key", config.subject_key), settings.reports_path)
    except (NotFound, Ambiguous, ValueError) as exc:
        raise dg.Failure(description=str(exc)) from None
    ((f, page, data),) = written  # a key names one subject
    context.log.info(f"subject {f.file_stem}: file as of {f.as_of} written, status {f.status}")
    return dg.Output(
        None,
        metadata={
            "subject_key": f.subject_key,
            "as_of": f.as_of.isoformat(),
            "status": f.status,
            "page": dg.MetadataValue.path(str(page)),
            "json": dg.MetadataValue.path(str(data)),
            "consent_events": len(f.consent),
            "club_intervals": len(f.club),
            "marketing_messages": len(f.marketing),
            "violations": len(f.violations),
        },
    )
