"""infra/prefect.yaml and flows/deployments.py describe the same deployments.

prefect.yaml is generated from flows/deployments.py (tests/infra/test_generated.py keeps it
current); these tests check that the generator renders each field as ``prefect deploy`` reads
it, and that the deployments themselves are sound.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.deployments import DEPLOYMENTS, NIGHTLY_CRON, ROOT_PLACEHOLDER, TIMEZONE, DeploymentSpec
from infra.generated import OPTION_EXAMPLES

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"


@pytest.fixture(scope="module")
def prefect_yaml() -> dict[str, Any]:
    return yaml.safe_load((INFRA / "prefect.yaml").read_text())


def by_entrypoint(prefect_yaml: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["entrypoint"]: d for d in prefect_yaml["deployments"]}


def normalized_trigger(trigger: dict[str, Any]) -> dict[str, Any]:
    from prefect.events import DeploymentEventTrigger

    return DeploymentEventTrigger(**trigger).model_dump(mode="json")


def test_every_python_deployment_is_in_the_yaml_and_nothing_else(prefect_yaml: dict) -> None:
    assert set(by_entrypoint(prefect_yaml)) == {spec.entrypoint for spec in DEPLOYMENTS}
    assert len(prefect_yaml["deployments"]) == len(DEPLOYMENTS)


@pytest.mark.parametrize("spec", DEPLOYMENTS, ids=lambda s: s.entrypoint)
def test_yaml_matches_python_definition(prefect_yaml: dict, spec: DeploymentSpec) -> None:
    deployed = by_entrypoint(prefect_yaml)[spec.entrypoint]
    assert deployed["name"] == spec.name
    assert " ".join(deployed["description"].split()) == spec.description
    assert (deployed.get("parameters") or {}) == spec.parameters
    assert deployed["work_pool"]["name"] == spec.work_pool
    assert tuple(deployed.get("tags") or ()) == spec.tags
    assert deployed.get("concurrency_limit") == spec.concurrency_limit
    schedules = deployed.get("schedules") or []
    if spec.cron:
        assert [(s["cron"], s["timezone"]) for s in schedules] == [(spec.cron, TIMEZONE)]
    else:
        assert schedules == []
    yaml_triggers = [normalized_trigger(t) for t in deployed.get("triggers") or []]
    assert yaml_triggers == [normalized_trigger(t) for t in spec.triggers]


def test_schedule_and_trigger_are_where_the_issue_wants_them() -> None:
    specs = {spec.function: spec for spec in DEPLOYMENTS}
    assert specs["nightly_inference"].cron == NIGHTLY_CRON == "0 2 * * *"
    (trigger,) = specs["imagery_drop"].triggers
    assert trigger["expect"] == ["landcover.imagery.dropped"]


@pytest.mark.parametrize("spec", DEPLOYMENTS, ids=lambda s: s.entrypoint)
def test_entrypoints_load_and_parameters_validate(
    spec: DeploymentSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``prefect deploy`` resolves entrypoints from the project root; parameters must fit."""
    from prefect.flows import load_flow_from_entrypoint

    monkeypatch.chdir(REPO)
    loaded = load_flow_from_entrypoint(spec.entrypoint)
    assert loaded.name == spec.load_flow().name
    parameters = spec.resolved_parameters("gs://bucket/landcover")
    for trigger in spec.triggers:  # what the trigger adds at run time
        parameters.update({k: "x" for k in trigger["parameters"]})
    if spec.function == "train_model":
        parameters.update({"arch": "unet", "config": {"data": "d", "output": "o"}})
    loaded.validate_parameters(parameters)


def test_stage_options_are_json_groups_the_flows_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The option groups prefect.yaml documents are what the deployed flows accept."""
    from prefect.exceptions import ParameterTypeError, SignatureMismatchError
    from prefect.flows import load_flow_from_entrypoint

    from pipelines.predict.options import PredictOptions

    monkeypatch.chdir(REPO)
    train = load_flow_from_entrypoint("flows/train.py:train")
    # The examples prefect.yaml's comments show (infra/generated.py) are what the flows accept.
    groups = {group: example for group, (example, _) in OPTION_EXAMPLES.items()}
    parameters = train.validate_parameters({"root": "gs://b/l", **groups})
    assert parameters["inference"] == PredictOptions(**groups["inference"])
    assert parameters["training"] == groups["training"]
    nightly = load_flow_from_entrypoint("flows/inference.py:nightly_inference")
    parameters = nightly.validate_parameters({"root": "r", "inference": {"tile": 256}})
    assert parameters["inference"] == PredictOptions(tile=256)
    with pytest.raises(ParameterTypeError, match="overlap"):
        nightly.validate_parameters({"root": "r", "inference": {"tile": 64, "overlap": 64}})
    with pytest.raises(SignatureMismatchError):  # the loose options of before are gone
        train.validate_parameters({"root": "r", "epochs": 3})
    text = (INFRA / "prefect.yaml").read_text()
    assert all(f"#   {group}: " in text for group in ("training", "preprocessing", "inference"))


def test_root_is_the_only_environment_specific_parameter() -> None:
    for spec in DEPLOYMENTS:
        templated = {k for k, v in spec.parameters.items() if isinstance(v, str) and "{{" in v}
        assert templated <= {"root"}
        assert spec.resolved_parameters("/data").get("root", "/data") == "/data"
    assert ROOT_PLACEHOLDER == "{{ $LANDCOVER_ROOT }}"


def test_pull_step_runs_the_code_where_the_images_put_it(prefect_yaml: dict) -> None:
    (step,) = prefect_yaml["pull"]
    directory = step["prefect.deployments.steps.set_working_directory"]["directory"]
    for dockerfile in ("Dockerfile.beam", "Dockerfile.trainer"):
        assert f"WORKDIR {directory}" in (INFRA / dockerfile).read_text()


def test_work_pools_use_the_project_images(prefect_yaml: dict) -> None:
    pools = prefect_yaml["definitions"]["work_pools"]
    assert {pool["name"] for pool in pools.values()} == {spec.work_pool for spec in DEPLOYMENTS}
    assert pools["gpu"]["job_variables"]["image"] == "{{ $TRAINER_IMAGE }}"
    beam_args = pools["process"]["job_variables"]["env"]["LANDCOVER_BEAM_ARGS"]
    assert "--runner=DataflowRunner" in beam_args
    assert "--sdk_container_image={{ $BEAM_IMAGE }}" in beam_args


def test_runner_deployments_carry_the_same_definitions(tmp_path: Path) -> None:
    from flows.deployments import runner_deployments

    deployments = {d.flow_name: d for d in runner_deployments(str(tmp_path))}
    assert set(deployments) == {"train", "train-model", "imagery-drop", "nightly-inference"}
    nightly = deployments["nightly-inference"]
    (schedule,) = nightly.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == (NIGHTLY_CRON, TIMEZONE)
    assert nightly.parameters == {"root": str(tmp_path)}
    (trigger,) = deployments["imagery-drop"].triggers
    spec = next(s for s in DEPLOYMENTS if s.function == "imagery_drop")
    assert normalized_trigger(trigger.model_dump()) == normalized_trigger(spec.triggers[0])
    assert deployments["train"].concurrency_limit == 1


def test_the_train_deployment_names_every_registered_architecture(prefect_yaml: dict) -> None:
    """No hand-written "both architectures": the list comes from models.registry."""
    from models.registry import ARCHITECTURES

    train = by_entrypoint(prefect_yaml)["flows/train.py:train"]
    description = " ".join(train["description"].split())
    assert f"train the {len(ARCHITECTURES)} registered architectures" in description
    assert all(name in description for name in ARCHITECTURES)
