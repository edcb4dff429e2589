"""The single Dagster entry point: assets, checks, the nightly job, schedule and sensors."""

import logging

import dagster as dg

import assets
import checks
from pipelines.instance import instance_hint
from pipelines.jobs import nightly_job, subject_file_job
from pipelines.resources import build_resources
from pipelines.schedules import nightly_schedule
from pipelines.sensors import SENSORS

ALL_ASSETS = dg.load_assets_from_package_module(assets)
ALL_CHECKS = dg.load_asset_checks_from_package_module(checks)

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[nightly_job, subject_file_job],
    schedules=[nightly_schedule],
    sensors=SENSORS,
    resources=build_resources(),
)

# `dg dev` on an instance without pipelines/dagster.yaml (DAGSTER_HOME unset, or never prepared):
# say in one line what to do. `make ui` prepares it first.
if (_hint := instance_hint()) is not None:
    logging.getLogger(__name__).warning(_hint)
