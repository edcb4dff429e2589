"""The nightly job: every asset and check of the day, in-process (one DuckDB writer)."""

import dagster as dg

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
