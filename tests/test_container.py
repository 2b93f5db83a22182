"""What CI can check of the container without a Docker engine.

The image itself is built and run by `make image-check` (docker or podman) or, on machines with
no engine, by ../shared/tools/container-check --tests; these tests cover the files that go into
it: lint, the compose schema, one install path, the torch index build argument, pipefail without
SHELL, the Makefile inside the image, and the entrypoint that makes ./outputs writable.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO

BIN = Path(sys.executable).parent
DOCKERFILE = (REPO / "Dockerfile").read_text()
ENTRYPOINT = REPO / "scripts" / "docker-entrypoint.sh"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(m.group(1).upper(), m.group(2)) for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", joined, re.M)]


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


def test_compose_config_where_a_compose_tool_is_installed(tmp_path):
    for tool in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(tool[0]) and subprocess.run([*tool, "version"], capture_output=True).returncode == 0:
            break
    else:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    env = {**os.environ, "OPTIQ_UID": "1234", "TORCH_INDEX": ""}
    result = subprocess.run(
        [*tool, "-f", str(REPO / "docker-compose.yml"), "--profile", "gpu", "config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(result.stdout)
    for name in ("optiq", "optiq-cpu"):
        assert config["services"][name]["environment"]["OPTIQ_UID"] == "1234"
        assert config["services"][name]["build"]["args"]["TORCH_INDEX"] == ""


def test_one_install_path_for_readme_ci_and_dockerfile():
    makefile = (REPO / "Makefile").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    runs = [args for op, args in instructions(DOCKERFILE) if op == "RUN"]
    installs = [args for args in runs if "bash scripts/install.sh" in args]
    # the build stage runs its Python part, the runtime stage its apt part (EGL/OSMesa/GL)
    assert any("OPTIQ_STEPS=python" in args for args in installs)
    assert any("OPTIQ_STEPS=system" in args for args in installs)
    assert re.search(r"^RUN .*bash scripts/install\.sh", DOCKERFILE, re.M | re.S)
    assert "bash scripts/install.sh" in makefile
    assert "pip install" not in DOCKERFILE  # no second copy of the install commands
    assert "make test" in ci and "make test" in readme and "make quick" in readme
    install = (REPO / "scripts" / "install.sh").read_text()
    assert "-c constraints.txt" in install and "--no-deps" in install and "imitation==1.0.1" in install


def test_install_steps_are_checked():
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "install.sh")],
        env={**os.environ, "OPTIQ_STEPS": "nothing"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "OPTIQ_STEPS" in result.stderr


def test_compose_services_run_the_scripts_with_gpu_outputs_wandb_and_the_host_user():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    service = compose["services"]["optiq"]
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert service["build"]["args"]["VARIANT"] == "gpu"
    assert "gpu" in service["profiles"]  # `compose build`/`up` and the CPU service leave the GPU image alone
    cpu = compose["services"]["optiq-cpu"]
    assert cpu["build"]["args"]["VARIANT"] == "cpu" and "profiles" not in cpu
    for svc in (service, cpu):
        assert any(v.startswith("./outputs:/opt/optiq/outputs") for v in svc["volumes"])
        assert any(v.startswith("./hparams.yml:") for v in svc["volumes"])  # the entrypoint's owner reference
        assert svc["environment"]["WANDB_MODE"].startswith("${WANDB_MODE:-offline")
        # passed through from the shell when set (no `${VAR:-}`: podman-compose 1.0 leaves that literal)
        for name in ("OPTIQ_UID", "OPTIQ_GID", "WANDB_API_KEY", "WANDB_ENTITY"):
            assert name in svc["environment"] and svc["environment"][name] is None
        # root only to start: the entrypoint steps down to the owner of ./outputs
        assert str(svc["user"]) in ("0:0", "0", "root")
        assert svc["build"]["args"]["TORCH_INDEX"] == "${TORCH_INDEX-auto}"  # unset: auto; empty: normal index
    assert "PATH=/opt/venv/bin" in DOCKERFILE  # so `python scripts/04_finetune_rl.py` uses the venv
    assert re.search(r"^USER (?!root|0)", DOCKERFILE, re.M)
    entry = [args for op, args in instructions(DOCKERFILE) if op == "ENTRYPOINT"]
    assert entry and "scripts/docker-entrypoint.sh" in entry[-1]


def test_pipefail_without_shell_and_no_unguarded_pipes():
    """podman/buildah's OCI format drops SHELL silently: no SHELL, and any pipe runs under pipefail."""
    ops = instructions(DOCKERFILE)
    assert not [args for op, args in ops if op == "SHELL"]
    for op, args in ops:
        if op == "RUN" and re.search(r"(?<![|])\|(?![|])", args):
            assert re.search(r"bash .*-o pipefail|set -[a-z]*o pipefail", args), args


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = (REPO / ".dockerignore").read_text().split()
    for entry in (".venv", "outputs", ".git", "**/__pycache__"):
        assert entry in ignored


def _venv_stage_install(variant: str, torch_index: str | None, cwd: Path) -> subprocess.CompletedProcess:
    """Run the build stage's install RUN up to scripts/install.sh (replaced by an echo) in cwd."""
    stage = DOCKERFILE.split("\nFROM ")[1]
    run = next(args for op, args in instructions(stage) if op == "RUN" and "bash scripts/install.sh" in args)
    stub = """sh -c 'echo "INDEX=[$OPTIQ_TORCH_INDEX] STEPS=[$OPTIQ_STEPS]"'; exit 0"""
    script = run.replace("bash scripts/install.sh", stub)
    args = dict(re.findall(r"^ARG (\w+)=?(\S*)", stage, re.M))
    args["VARIANT"] = variant
    if torch_index is not None:
        args["TORCH_INDEX"] = torch_index
    env = {"PATH": os.environ["PATH"], **args}
    return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize(
    ("variant", "torch_index", "expected"),
    [
        ("cpu", None, CPU_INDEX),  # default: PyTorch's CPU wheels
        ("gpu", None, ""),  # default: CUDA torch from the normal index
        ("cpu", "", ""),  # empty: the normal index (pip's configuration: a mirror, local wheels)
        ("cpu", "https://mirror.example/whl/cpu", "https://mirror.example/whl/cpu"),
    ],
)
def test_torch_index_build_argument(variant, torch_index, expected, tmp_path):
    assert re.search(r"^ARG TORCH_INDEX=auto$", DOCKERFILE, re.M)
    result = _venv_stage_install(variant, torch_index, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"INDEX=[{expected}] STEPS=[python]" in result.stdout


def test_unknown_variant_fails_the_build(tmp_path):
    result = _venv_stage_install("tpu", None, tmp_path)
    assert result.returncode != 0 and "VARIANT must be cpu or gpu" in result.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_makefile_uses_the_venv_that_optiq_venv_names():
    """Inside the image OPTIQ_VENV=/opt/venv: `make test` must use it, not create .venv in /opt/optiq."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPTIQ_", "MAKE"))}

    def dry_run(**extra):
        result = subprocess.run(
            ["make", "-n", "-B", "test"], cwd=REPO, env={**env, **extra}, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    inside = dry_run(OPTIQ_VENV="/opt/venv")
    assert "OPTIQ_VENV=/opt/venv bash scripts/install.sh" in inside
    assert "/opt/venv/bin/python -m pytest" in inside and "touch /opt/venv/.install-stamp" in inside
    assert ".venv/bin/python -m pytest" in dry_run()  # the default is unchanged
    assert "python3 -m pytest" in dry_run(OPTIQ_VENV="system")


# ---------------------------------------------------------------- the entrypoint


@pytest.fixture
def shared_dir():
    """A folder other uids can traverse (pytest's tmp_path is private to the current user)."""
    path = Path(tempfile.mkdtemp(prefix="optiq-entrypoint-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def entrypoint(out: Path, ref: Path, *command: str, as_uid: int | None = None, **env) -> subprocess.CompletedProcess:
    full_env = {
        "PATH": os.environ["PATH"],
        "OPTIQ_OUTPUTS": str(out),
        "OPTIQ_OWNER_REF": str(ref),
        **env,
    }
    prefix = []
    if as_uid is not None:
        prefix = ["setpriv", f"--reuid={as_uid}", f"--regid={as_uid}", "--clear-groups"]
    return subprocess.run([*prefix, "sh", str(ENTRYPOINT), *command], env=full_env, capture_output=True, text=True)


WHO = ("sh", "-c", 'echo "$(id -u):$(id -g) $HOME"; touch "$OPTIQ_OUTPUTS/written"')
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="stepping down needs root and setpriv"
)


@needs_root
def test_entrypoint_runs_as_the_owner_of_an_engine_created_outputs_folder(shared_dir):
    """`docker compose run` on a fresh clone: the engine creates ./outputs as root."""
    out, ref = shared_dir / "outputs", shared_dir / "hparams.yml"
    out.mkdir()  # root-owned, as dockerd makes it
    ref.write_text("x: 1\n")
    os.chown(ref, 4321, 4322)  # the checkout's owner
    result = entrypoint(out, ref, *WHO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "4321:4322"
    home = Path(result.stdout.split()[1])
    assert home.stat().st_uid == 4321
    assert (out.stat().st_uid, out.stat().st_gid) == (4321, 4322)
    assert (out / "written").stat().st_uid == 4321
    shutil.rmtree(home, ignore_errors=True)


@needs_root
def test_entrypoint_runs_as_the_owner_of_an_existing_outputs_folder(shared_dir):
    out, ref = shared_dir / "outputs", shared_dir / "hparams.yml"
    out.mkdir()
    os.chown(out, 4501, 4502)
    ref.write_text("x: 1\n")
    os.chown(ref, 4321, 4322)  # the folder's owner wins
    result = entrypoint(out, ref, *WHO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "4501:4502"
    assert (out / "written").stat().st_uid == 4501
    # OPTIQ_UID/OPTIQ_GID override; a folder that user cannot write is a warning with the fix
    result = entrypoint(out, ref, "sh", "-c", "id -u", OPTIQ_UID="4600", OPTIQ_GID="4600")
    assert result.stdout.strip() == "4600"
    assert "not writable by uid 4600" in result.stderr and "--user 0" in result.stderr
    shutil.rmtree("/tmp/optiq-home-4501", ignore_errors=True)
    shutil.rmtree("/tmp/optiq-home-4600", ignore_errors=True)


@needs_root
def test_entrypoint_stays_root_when_everything_belongs_to_root(shared_dir):
    """Rootless Docker/Podman: the host user is root in the container, so root is right."""
    out, ref = shared_dir / "outputs", shared_dir / "hparams.yml"
    ref.write_text("x: 1\n")
    result = entrypoint(out, ref, *WHO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("0:0 ")
    assert out.is_dir() and (out / "written").stat().st_uid == 0


def test_entrypoint_as_a_plain_user_warns_with_the_fix(shared_dir):
    """The image's default user (uid 1000) or `docker run --user`: no stepping down, a clear warning."""
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to act as a plain user")
        uid = 4700
    else:
        uid = None
    out, ref = shared_dir / "outputs", shared_dir / "hparams.yml"
    out.mkdir()
    out.chmod(0o755)  # owned by the test's user; not writable by uid 4700 (or by us, see below)
    if uid is None:
        out.chmod(0o555)
    result = entrypoint(out, ref, "sh", "-c", "echo ran as $(id -u)", as_uid=uid)
    assert result.returncode == 0 and result.stdout.startswith("ran as")
    assert "is not writable by uid" in result.stderr and "--user 0" in result.stderr
    writable = shared_dir / "mine"
    writable.mkdir()
    if uid is not None:
        os.chown(writable, uid, uid)
    result = entrypoint(writable / "outputs", ref, *WHO, as_uid=uid)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert (writable / "outputs" / "written").is_file()
    if uid is not None:
        shutil.rmtree(f"/tmp/optiq-home-{uid}", ignore_errors=True)


def test_entrypoint_rejects_a_non_numeric_uid(shared_dir):
    if os.geteuid() != 0:
        pytest.skip("OPTIQ_UID is read only when the entrypoint starts as root")
    result = entrypoint(shared_dir / "o", shared_dir / "r", "true", OPTIQ_UID="alice")
    assert result.returncode == 2 and "must be numbers" in result.stderr
