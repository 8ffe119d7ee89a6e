"""The deployments' parameters as served: root filled in, training overrides where they belong."""

from __future__ import annotations

from flows.deployments import DEPLOYMENTS, ROOT_PLACEHOLDER


def test_training_overrides_reach_the_flows_that_train_and_only_those() -> None:
    specs = {spec.function: spec for spec in DEPLOYMENTS}
    training = {"preset": "cpu", "epochs": 2}
    assert specs["train"].resolved_parameters("/r", training) == {
        "root": "/r",
        "train_deployment": "train-model/landcover",
        "training": training,
    }
    # The drop flow hands them to the train run it starts (or the subflow it runs).
    drop = specs["imagery_drop"].resolved_parameters("/r", training)
    assert drop["train_parameters"] == {"training": training}
    assert specs["nightly_inference"].resolved_parameters("/r", training) == {"root": "/r"}
    assert specs["train_model"].resolved_parameters("/r", training) == {}
    # Without overrides the parameters are the definitions', and the definitions unchanged.
    assert specs["train"].resolved_parameters("/r") == {
        "root": "/r",
        "train_deployment": "train-model/landcover",
    }
    assert specs["train"].parameters["root"] == ROOT_PLACEHOLDER
    assert "training" not in specs["train"].parameters


def test_the_train_flow_accepts_what_up_passes() -> None:
    """The served train deployment's parameters validate against the flow's signature."""
    specs = {spec.function: spec for spec in DEPLOYMENTS}
    train = specs["train"]
    parameters = train.resolved_parameters("/r", {"preset": "cpu"})
    assert train.load_flow().validate_parameters(parameters)["training"] == {"preset": "cpu"}
