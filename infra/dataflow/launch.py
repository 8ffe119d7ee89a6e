"""Flex-template launcher glue: Dataflow template parameters → the ``landcover`` CLI's flags.

Dataflow hands a Flex Template's parameters to the launcher program as ``--name=value``. The
templates name them in Beam's style (``patch_size``), while the CLI spells its own options with
hyphens (``--patch-size``) and its switches take no value (``--overwrite``). :func:`translate`
bridges the two using the CLI's own parser, so the templates and the CLI cannot drift apart
(``tests/infra/test_dataflow_templates.py`` checks every template parameter against it).
Everything the parser does not know (``--runner``, ``--project``, ``--temp_location``,
``--sdk_container_image``… that Dataflow adds) passes through to Beam unchanged.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

TRUE_WORDS = {"true", "1", "yes"}


def translate(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """``--patch_size=612`` → ``--patch-size=612``; ``--overwrite=true`` → ``--overwrite``,
    ``--overwrite=false`` → ``--no-overwrite`` (or nothing, for a switch without that form)."""
    actions = {opt: action for action in parser._actions for opt in action.option_strings}
    out: list[str] = []
    for arg in argv:
        if not arg.startswith("--"):
            out.append(arg)
            continue
        name, has_value, value = arg[2:].partition("=")
        flag = "--" + name.replace("_", "-")
        action = actions.get(flag)
        if action is None:
            out.append(arg)  # a Beam / Dataflow option
        elif action.nargs == 0:  # a switch: on when the template says true
            if not has_value or value.lower() in TRUE_WORDS:
                out.append(flag)
            elif "--no-" + flag[2:] in action.option_strings:
                out.append("--no-" + flag[2:])  # off, even where it defaults to on
        else:
            out.append(f"{flag}={value}" if has_value else flag)
    return out
