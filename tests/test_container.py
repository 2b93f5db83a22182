"""What CI can check of the container without a Docker engine."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO

BIN = Path(sys.executable).parent


def test_dockerfile_passes_hadolint():
    result = subprocess.run([str(BIN / "hadolint"), str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_matches_the_compose_specification():
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(REPO / "docker-compose.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_install_path_for_readme_ci_and_dockerfile():
    dockerfile = (REPO / "Dockerfile").read_text()
    makefile = (REPO / "Makefile").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert re.search(r"^RUN .*bash scripts/install\.sh", dockerfile, re.M | re.S)
    assert "bash scripts/install.sh" in makefile
    assert "pip install" not in dockerfile  # no second copy of the install commands
    assert "make test" in ci and "make test" in readme and "make quick" in readme
    install = (REPO / "scripts" / "install.sh").read_text()
    assert "-c constraints.txt" in install and "--no-deps" in install and "imitation==1.0.1" in install


def test_compose_service_runs_the_scripts_with_gpu_outputs_and_wandb():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    service = compose["services"]["optiq"]
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert any(v.startswith("./outputs:") for v in service["volumes"])
    assert service["environment"]["WANDB_MODE"].startswith("${WANDB_MODE:-offline")
    assert service["build"]["args"]["VARIANT"] == "gpu"
    assert compose["services"]["optiq-cpu"]["build"]["args"]["VARIANT"] == "cpu"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "PATH=/opt/venv/bin" in dockerfile  # so `python scripts/04_finetune_rl.py` uses the venv
    assert re.search(r"^USER (?!root|0)", dockerfile, re.M)
