"""The jobs: the nightly job (every asset and check of the day, in-process: one DuckDB writer) and the
subject's file on demand."""

import dagster as dg

from pipelines.evidence.op import write_subject_file
from pipelines.partitions import BACKFILL_HELP, nightly_partitions

NIGHTLY_JOB_NAME = "nightly_compliance"

nightly_job = dg.define_asset_job(
    NIGHTLY_JOB_NAME,
    selection=dg.AssetSelection.all(),
    partitions_def=nightly_partitions,
    executor_def=dg.in_process_executor,
    description="Ingest the arrival day, derive consent and CLUB state, purge erased subjects, "
    "evaluate the policy rules and publish the compliance report. " + BACKFILL_HELP,
    tags={"pipeline": "compliance"},
)

SUBJECT_FILE_JOB_NAME = "subject_file"


@dg.job(
    name=SUBJECT_FILE_JOB_NAME,
    executor_def=dg.in_process_executor,
    description="Write one subject's file (consent proof, CLUB, marketing sends, violations, erasure) to "
    "<reports>/subjects/, as of the last processed day. Run config: the subject's key, never an identifier.",
    tags={"pipeline": "compliance"},
)
def subject_file_job():
    write_subject_file()
