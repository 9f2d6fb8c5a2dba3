"""Experiments: sweeps, replications and sensitivity above the pipeline (scenario -> simulate -> price).

    from sim.experiments import load_study, run_study
    result = run_study(load_study("studies/quick-sweep.yaml"))
    result.summary(); result.compare("p000", "p001", "total"); result.plot("total")

One concept per module: :mod:`.study` (files), :mod:`.design` (points), :mod:`.seeds` (common random
numbers), :mod:`.worker` (one run), :mod:`.store` (resume), :mod:`.executors`, :mod:`.runner`,
:mod:`.summary`, :mod:`.sensitivity`, :mod:`.plots`, :mod:`.result`.
"""

from sim.experiments.result import StudyResult
from sim.experiments.runner import run_study
from sim.experiments.study import Study, load_study

__all__ = ["Study", "StudyResult", "load_study", "run_study"]
