"""The output layout: ``outputs/<env>/<run-name>/<stage>/...`` (documented in README).

BC seeds: each seed N trains its own BC in ``02_bc/seed<N>/`` and selects its checkpoint in
``03_select/seed<N>/`` (what run_all does for each of ``--seeds``); fine-tuning runs
``<algo>_<init>_seed<N>`` from BC start from BC seed N. Demos are shared in ``01_demos/``, or
collected per seed in ``01_demos/seed<N>/`` (``--demos-per-seed``).

The single-BC layout (``02_bc/`` and ``03_select/best.json`` with no seed folders: stage
scripts run without ``--seed``, and optiq before BC seeds) stays readable: with no seed
folders, every seed uses it. Once a stage folder has seed folders, a seed without its own is
an error: the shared folder is never mixed in (:func:`seed_folder`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from optiq.config import DATA_ROOT, IN_CHECKOUT, REPO_ROOT
from optiq.errors import OptiqError


def _default_outputs() -> Path:
    """``outputs/`` of the checkout; for an installed wheel, ``outputs/`` in the working directory."""
    if IN_CHECKOUT:
        return REPO_ROOT / "outputs"
    try:
        return Path.cwd() / "outputs"
    except OSError:  # the working directory was deleted
        return Path("outputs")


DEFAULT_OUTPUTS = _default_outputs()
SHIPPED_EXPERTS = DATA_ROOT / "experts"  # the checkout's experts/, or the copy inside an installed wheel


@dataclass(frozen=True)
class RunPaths:
    """Folders of one pipeline run; nothing is created until a stage writes."""

    outputs: Path
    env_id: str
    run_name: str

    @property
    def root(self) -> Path:
        return self.outputs / self.env_id / self.run_name

    @property
    def demos(self) -> Path:
        return self.root / "01_demos"

    @property
    def bc(self) -> Path:
        """``02_bc/``: the single-BC folder, and the parent of the per-seed ones."""
        return self.root / "02_bc"

    @property
    def select(self) -> Path:
        """``03_select/``: the single-BC folder, and the parent of the per-seed ones."""
        return self.root / "03_select"

    def demos_dir(self, seed: int | None = None) -> Path:
        """``01_demos/seed<N>/`` (per-seed demos), or ``01_demos/`` for None."""
        return self.demos if seed is None else self.demos / seed_name(seed)

    def bc_dir(self, seed: int | None = None) -> Path:
        """``02_bc/seed<N>/``, or the single-BC ``02_bc/`` for None."""
        return self.bc if seed is None else self.bc / seed_name(seed)

    def select_dir(self, seed: int | None = None) -> Path:
        """``03_select/seed<N>/``, or the single-BC ``03_select/`` for None."""
        return self.select if seed is None else self.select / seed_name(seed)

    def demos_for(self, seed: int) -> Path:
        """The demos folder seed ``seed`` trains on: its own, or the shared one (see :func:`seed_folder`)."""
        return seed_folder(self.demos, seed, "demos.npz", "demos", "01_collect_demos.py --per-seed")

    def select_for(self, seed: int) -> Path:
        """The ``03_select`` folder whose ``best.json`` seed ``seed`` fine-tunes from (see :func:`seed_folder`)."""
        return seed_folder(self.select, seed, "best.json", "selected BC checkpoint", "02_train_bc.py/03_select_best.py")

    def finetune(self, algo: str, init: str, seed: int) -> Path:
        return self.root / "04_finetune" / finetune_run_name(algo, init, seed)

    @property
    def finetune_root(self) -> Path:
        return self.root / "04_finetune"

    @property
    def evaluation(self) -> Path:
        return self.root / "05_eval"

    @property
    def compare(self) -> Path:
        return self.root / "06_compare"

    def trained_expert(self, algo: str, seed: int) -> Path:
        """Where ``--train-expert`` puts an expert trained on demand (shared by runs of this env)."""
        return self.outputs / self.env_id / "experts" / f"{algo}_seed{seed}"


def seed_name(seed: int) -> str:
    return f"seed{seed}"


_SEED_DIR = re.compile(r"^seed(\d+)$")


def seed_folders(root: Path) -> list[int]:
    """The seeds N with a ``seed<N>/`` folder under ``root``, sorted."""
    if not root.is_dir():
        return []
    return sorted(int(m.group(1)) for p in root.iterdir() if p.is_dir() and (m := _SEED_DIR.match(p.name)))


def seed_folder(root: Path, seed: int, marker: str, what: str, script: str) -> Path:
    """``root/seed<N>`` if it holds ``marker``; else ``root`` itself when it has no seed folders at all
    (shared demos, single BC); a seed missing among others' folders is a one-line error."""
    own = root / seed_name(seed)
    if (own / marker).is_file():
        return own
    others = [s for s in seed_folders(root) if (root / seed_name(s) / marker).is_file()]
    if others:
        listed = ", ".join(map(str, others))
        raise OptiqError(
            f"no {what} for seed {seed}: {root} has per-seed folders (seeds {listed}) but no {own.name}/{marker} "
            f"(run {script} with --seed {seed})"
        )
    return root


def finetune_run_name(algo: str, init: str, seed: int) -> str:
    return f"{algo}_{init}_seed{seed}"


_RUN_NAME = re.compile(r"^(ppo|sac)_(.+)_seed(\d+)$")


def parse_finetune_run_name(name: str) -> tuple[str, str, int] | None:
    """``(algo, init, seed)`` of a name made by :func:`finetune_run_name`, or None."""
    match = _RUN_NAME.match(name)
    return (match.group(1), match.group(2), int(match.group(3))) if match else None


def shipped_expert(env_id: str) -> Path | None:
    """The expert shipped with optiq (the repository's experts/) for ``env_id``, if there is one."""
    folder = SHIPPED_EXPERTS / env_id
    return folder if (folder / "expert.json").is_file() else None
