"""The output layout: ``outputs/<env>/<run-name>/<stage>/...`` (documented in README)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from optiq.config import REPO_ROOT

DEFAULT_OUTPUTS = REPO_ROOT / "outputs"
SHIPPED_EXPERTS = REPO_ROOT / "experts"


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
        return self.root / "02_bc"

    @property
    def select(self) -> Path:
        return self.root / "03_select"

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


def finetune_run_name(algo: str, init: str, seed: int) -> str:
    return f"{algo}_{init}_seed{seed}"


_RUN_NAME = re.compile(r"^(ppo|sac)_(.+)_seed(\d+)$")


def parse_finetune_run_name(name: str) -> tuple[str, str, int] | None:
    """``(algo, init, seed)`` of a name made by :func:`finetune_run_name`, or None."""
    match = _RUN_NAME.match(name)
    return (match.group(1), match.group(2), int(match.group(3))) if match else None


def shipped_expert(env_id: str) -> Path | None:
    """The expert shipped in the repository for ``env_id``, if there is one."""
    folder = SHIPPED_EXPERTS / env_id
    return folder if (folder / "expert.json").is_file() else None
