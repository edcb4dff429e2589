"""One name for the code location, `consent_compliance`, wherever one is given (issue 25 item 3).

Dagster stores the schedule's and the sensors' state under the location name: a second name (as
`dagster dev -w workspace.yaml` and `dg dev` used to give) looks like a new location with none.
The files are parsed, then the names are read the way Dagster and dg read them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
NAME = "consent_compliance"


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _named_in_files() -> dict[str, list[str]]:
    pyproject = _pyproject()
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    helm = yaml.safe_load((REPO / "deploy" / "helm-values.yaml").read_text())
    return {
        "pyproject [tool.dagster]": [pyproject["tool"]["dagster"].get("code_location_name")],
        "pyproject [tool.dg.project]": [pyproject["tool"]["dg"]["project"].get("code_location_name")],
        "workspace.yaml": [entry["python_module"].get("location_name") for entry in workspace["load_from"]],
        "deploy/helm-values.yaml": [s.get("name") for s in helm["dagsterWebserver"]["workspace"]["servers"]],
    }


def test_every_file_names_the_same_location():
    named = _named_in_files()
    assert named == {place: [NAME] for place in named}


def test_helm_serves_the_code_server_that_the_chart_deploys():
    helm = yaml.safe_load((REPO / "deploy" / "helm-values.yaml").read_text())
    assert helm["dagsterWebserver"]["workspace"]["enabled"] is True
    [server] = helm["dagsterWebserver"]["workspace"]["servers"]
    [deployment] = helm["dagster-user-deployments"]["deployments"]
    assert (server["host"], server["port"]) == (deployment["name"], deployment["port"])


def test_dagster_and_dg_load_the_same_name():
    from dagster._core.workspace.load_target import PyProjectFileTarget, WorkspaceFileTarget
    from dagster_dg_core.context import DgContext

    from_workspace = {o.location_name for o in WorkspaceFileTarget([str(REPO / "workspace.yaml")]).create_origins()}
    from_pyproject = {o.location_name for o in PyProjectFileTarget(str(REPO / "pyproject.toml")).create_origins()}
    dg_context = DgContext.for_project_environment(REPO, {})
    assert from_workspace == from_pyproject == {dg_context.code_location_name} == {NAME}
    # ... and the module they load is the single entry point
    assert dg_context.code_location_target_module_name == "pipelines.definitions"


def test_make_ui_runs_dg_dev_and_the_docs_name_the_location():
    recipe = re.search(r"^ui:.*\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.M)
    assert recipe and "dg dev" in recipe.group(1) and "dagster dev" not in recipe.group(1)
    for doc in ("README.md", "docs/operations.md", "docs/deploy.md"):
        text = (REPO / doc).read_text()
        assert NAME in text, doc
        assert "dagster dev" not in text, f"{doc} still tells to run `dagster dev`"
