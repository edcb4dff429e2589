"""The single Dagster entry point: assets, checks, the nightly job, schedule and sensors."""

import dagster as dg

import assets
import checks
from pipelines.jobs import nightly_job
from pipelines.resources import build_resources
from pipelines.schedules import nightly_schedule
from pipelines.sensors import SENSORS

ALL_ASSETS = dg.load_assets_from_package_module(assets)
ALL_CHECKS = dg.load_asset_checks_from_package_module(checks)

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[nightly_job],
    schedules=[nightly_schedule],
    sensors=SENSORS,
    resources=build_resources(),
)
