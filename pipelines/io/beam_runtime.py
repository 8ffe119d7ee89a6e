"""Beam set-up shared by every Beam job: options from leftover CLI flags, an offline DirectRunner.

Beam 2.77's DirectRunner first tries the Prism runner, whose first use downloads a binary from
GitHub, and only falls back to the in-process runner when that fails: slow and noisy offline,
and a surprise network call on a laptop. Local runs here use :class:`OfflineDirectRunner`, which
is the same DirectRunner minus that attempt (``--direct_num_workers`` and
``--direct_running_mode multi_processing`` keep working). Every other runner (Dataflow, Flink,
an explicit ``PrismRunner``) is passed through untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions
from apache_beam.runners.direct.direct_runner import DirectRunner
from apache_beam.runners.runner import PipelineRunner

_DIRECT_NAMES = {"direct", "directrunner"}


class OfflineDirectRunner(DirectRunner):
    """DirectRunner that never tries Prism.

    DirectRunner skips Prism for interactive pipelines and that flag affects nothing else in
    it, so setting it is the narrowest switch Beam offers.
    """

    def __init__(self) -> None:
        super().__init__()
        self.is_interactive()


def pipeline_options(
    beam_args: Sequence[str], *, save_main_session: bool = False
) -> PipelineOptions:
    """PipelineOptions from the flags our own parser did not consume."""
    options = PipelineOptions(list(beam_args))
    # Workers import our packages (installed in their image); pickling __main__ is not needed.
    options.view_as(SetupOptions).save_main_session = save_main_session
    return options


def is_local(options: PipelineOptions) -> bool:
    runner = options.view_as(StandardOptions).runner
    return runner is None or (isinstance(runner, str) and runner.lower() in _DIRECT_NAMES)


def runner_for(options: PipelineOptions) -> PipelineRunner | None:
    """The runner to use: offline DirectRunner for local runs, else None (Beam picks)."""
    return OfflineDirectRunner() if is_local(options) else None


def create_pipeline(options: PipelineOptions) -> beam.Pipeline:
    """A Pipeline that runs offline when local and unchanged anywhere else."""
    return beam.Pipeline(runner=runner_for(options), options=options)
