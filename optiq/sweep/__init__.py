"""Sweeps of envs x methods x seeds: the same stage jobs as run_all, on a local process pool or a Ray cluster.

* :mod:`optiq.sweep.spec`: what a study is (envs with their demo sources, methods, seeds, preset, overrides).
* :mod:`optiq.sweep.graph`: the study as one graph of stage jobs (run_all's, per env, plus demos and compare).
* :mod:`optiq.sweep.backends`: where jobs run: ``local`` (subprocesses) or ``ray`` (one Ray task per job).
* :mod:`optiq.sweep.study`: the cross-env report (normalised scores, IQM, profiles, P(improvement)).
"""
