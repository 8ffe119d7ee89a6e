"""The ``train`` flow's steps, each a plain function over typed values that tests can call.

The flow (:mod:`flows.train`) reads like the job:

1. records: ``raw/`` → ``records/<dataset>/`` unless they are up to date (:mod:`flows.train`);
2. candidates: one trained model per architecture (:mod:`flows.training.candidates`);
3. evaluation: each candidate, and the promoted model, on the val scenes
   (:mod:`flows.training.evaluation`);
4. promotion: the best candidate replaces the promoted model if it beats it
   (:mod:`flows.training.promotion`);
5. report: ``reports/<run>/report.md`` and the run's markdown artifact
   (:mod:`flows.training.report`).

Each step takes and returns dataclasses (:class:`~flows.training.candidates.Candidate`,
:class:`~flows.training.evaluation.Evaluation`, :class:`~flows.training.promotion.Promotion`);
only the flow's own result, which travels as JSON, is a dict.
"""
