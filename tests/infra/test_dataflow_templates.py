"""Flex-template metadata: valid, and every parameter is an option of the CLI it launches.

The metadata is generated from the CLIs (``python -m infra.generated``;
tests/infra/test_generated.py holds the committed files equal to it); these tests check what
the generator makes of a parser, and the launcher that turns template arguments into flags.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

REQUIRED_PARAMETER_KEYS = {"name", "label", "helpText"}


def load_launcher(infra: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("launch", infra / "dataflow" / "launch.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parser_for(template: str) -> argparse.ArgumentParser:
    if template == "preprocess":
        from pipelines.preprocess.cli import build_parser
    else:
        from pipelines.predict.cli import build_parser
    return build_parser()


@pytest.mark.parametrize("template", ["preprocess", "predict"])
def test_template_parameters_match_the_cli(infra: Path, template: str) -> None:
    metadata = json.loads((infra / "dataflow" / f"{template}-template.json").read_text())
    assert metadata["name"] == f"landcover-{template}" and metadata["description"]
    parser = parser_for(template)
    options = {
        opt: action
        for action in parser._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt != "--help"
    }
    names = [p["name"] for p in metadata["parameters"]]
    assert len(names) == len(set(names))
    for parameter in metadata["parameters"]:
        assert set(parameter) >= REQUIRED_PARAMETER_KEYS, parameter
        assert re.fullmatch(r"[a-z][a-z0-9_]*", parameter["name"])
        flag = "--" + parameter["name"].replace("_", "-")
        assert flag in options, f"{template}: {parameter['name']} is not a CLI option"
        action = options[flag]
        assert parameter.get("isOptional", False) == (not action.required), parameter["name"]
        for regex in parameter.get("regexes", []):
            re.compile(regex)
    # Every option of the CLI can be set through the template (a boolean's --no- spelling is
    # the same option).
    covered = {"--" + name.replace("_", "-") for name in names}
    uncovered = {
        action.option_strings[0]
        for action in set(options.values())
        if not covered & set(action.option_strings)
    }
    assert not uncovered, f"{template}: CLI options missing from the template: {uncovered}"


def test_launcher_translates_template_style_arguments(infra: Path) -> None:
    launch = load_launcher(infra)
    argv = [
        "--input=gs://b/raw",
        "--patch_size=256",
        "--runner=DataflowRunner",
        "--temp_location=gs://b/tmp",
    ]
    translated = launch.translate(argv, parser_for("preprocess"))
    assert translated == [
        "--input=gs://b/raw",
        "--patch-size=256",
        "--runner=DataflowRunner",
        "--temp_location=gs://b/tmp",
    ]
    predict = launch.translate(
        ["--model=gs://m", "--overwrite=true", "--class_ids=false", "--batch_size=2"],
        parser_for("predict"),
    )
    # A false switch is spelled off, so one that defaults to on can be turned off too.
    assert predict == ["--model=gs://m", "--overwrite", "--no-class-ids", "--batch-size=2"]
    args, beam = parser_for("predict").parse_known_args(
        [*predict, "--input=gs://i", "--output=gs://o", "--project=p"]
    )
    assert (args.overwrite, args.class_ids, args.batch_size) == (True, False, 2)
    assert beam == ["--project=p"]


@pytest.mark.parametrize("template", ["preprocess", "predict"])
def test_launcher_files_exist_and_call_their_cli(infra: Path, template: str) -> None:
    source = (infra / "dataflow" / f"{template}_main.py").read_text()
    module = "pipelines.preprocess.cli" if template == "preprocess" else "pipelines.predict.cli"
    assert f"from {module} import build_parser, main" in source
    assert "translate(sys.argv[1:], build_parser())" in source
