"""Stage 04: RL (PPO or SAC) from the selected BC checkpoint or from scratch.

Both starts use the same tuned hyperparameters, the same env construction and the same
evaluation protocol, so the only difference is the initial policy (and, from BC, the
observation statistics it was trained with). A rerun resumes from the last checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch as th
from rich.console import Console
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from optiq.algos import algo_class, build_model, make_eval_venv, make_training_venv
from optiq.atomic_io import read_json, remove_stale_temp_files, write_json
from optiq.bc.train import pretrain_with_bc
from optiq.demos.storage import load_demos
from optiq.envs import freeze_observation_statistics, make_vec, pixel_mode
from optiq.errors import OptiqError
from optiq.evaluation.video import PeriodicVideo
from optiq.policies import PolicyFiles, check_spaces, load_model
from optiq.records import RunRecord
from optiq.rl.anchor import AnchorProbes
from optiq.rl.averaging import evaluated_policy
from optiq.rl.demo_sac import DemoSAC
from optiq.rl.exploration import NoiseToleranceCheck
from optiq.rl.export import save_stock_model, save_vecnormalize
from optiq.rl.hybrid_ppo import HybridPPO, HybridSettings
from optiq.rl.imitation_methods import check_imitation_init, run_imitation
from optiq.rl.inits import IMITATION_INITS, INITS
from optiq.rl.ipmd import IPMD, ipmd_kwargs, save_reward_net
from optiq.rl.pretrained.encoder_start import AdapterObsWrapper, load_bundle, save_bundle, write_bundle
from optiq.rl.pretrained.policy_factory import bootstrap_model
from optiq.rl.release import GuardedRelease, ReleaseGate
from optiq.rl.training import (
    Checkpoint,
    EvalLog,
    PeriodicEvaluation,
    evaluation_reseed,
    latest_checkpoint,
    learn,
    refuse_shrunk_budget,
    resume_model,
    unlearning_report,
)
from optiq.rl.transfer import copy_bc_weights
from optiq.seeding import seed_everything
from optiq.settings import BC_RL_SECTIONS, check_partial

console = Console()


@dataclass
class BootstrapOptions:
    """How ``--init pretrained`` starts from a pretrained encoder (see optiq.rl.pretrained)."""

    pretrained: Path
    adapter_mode: str = "feature"
    torchscript_in_dim: int | None = None
    adapter_hidden: list[int] | None = None
    feature_pool: str = "last"
    obs_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "pretrained": str(self.pretrained)}


def model_class_for(algo: str, init: str) -> type[BaseAlgorithm]:
    if init == "bc":
        return HybridPPO if algo == "ppo" else DemoSAC
    if init == "ipmd":
        return IPMD
    return algo_class(algo)


def extension_kwargs(config: dict[str, Any], algo: str, init: str) -> dict[str, Any]:
    """Constructor arguments of HybridPPO/DemoSAC from ``finetune.<algo>.bc_rl``.

    The section is typed (optiq.settings.PPOFromBC / DemoSACSettings): keys it leaves out take the
    defaults written there, and the PPO/SAC settings it may set apart (``APART``) apply only where given.
    """
    if init != "bc":
        return {}
    given = config["finetune"][algo].get("bc_rl") or {}
    cls = BC_RL_SECTIONS[algo]
    typed = check_partial(cls, given, f"finetune.{algo}.bc_rl")
    apart = {key: getattr(typed, key) for key in cls.APART if key in given}
    if algo == "ppo":
        hybrid = HybridSettings(**{item.name: getattr(typed, item.name) for item in dataclasses.fields(HybridSettings)})
        return {"hybrid": hybrid, **apart}
    own = {item.name: getattr(typed, item.name) for item in dataclasses.fields(cls) if item.name not in cls.APART}
    return {**own, **apart}


def _attach_demonstrations(model: BaseAlgorithm, demos_path: Path | None, bc_model: BaseAlgorithm | None) -> None:
    if demos_path is None:
        raise OptiqError("--init bc needs the demos of stage 01 (run scripts/01_collect_demos.py first)")
    env = model.get_env()
    spec = env.get_attr("spec")[0]
    time_limit = spec.max_episode_steps if spec is not None else None
    trajectories = load_demos(demos_path, env.observation_space, env.action_space, time_limit)
    if isinstance(model, HybridPPO):
        model.set_demonstrations(trajectories, behaviour_policy=bc_model.policy if bc_model is not None else None)
    elif isinstance(model, DemoSAC):
        model.set_demonstrations(trajectories)


class BestPolicy:
    """Keeps ``best_model.zip`` (stock SB3) + ``best_vecnormalize.pkl``: the best evaluated policy so far.

    ``best.json`` remembers its return, so a resumed run only replaces it with a better one.
    """

    def __init__(self, run_dir: Path, model: BaseAlgorithm):
        self.run_dir = run_dir
        self.model = model
        self.path = run_dir / "best.json"
        self.best = read_json(self.path) if self.path.is_file() else None

    def update(self, row: dict[str, float]) -> None:
        if self.best is not None and row["return_mean"] <= self.best["return_mean"]:
            return
        save_stock_model(self.model, self.run_dir / "best_model.zip")
        venv = self.model.get_env()
        if isinstance(venv, VecNormalize):
            save_vecnormalize(venv, self.run_dir / "best_vecnormalize.pkl")
        self.best = {"return_mean": row["return_mean"], "timesteps": int(row["timesteps"])}
        write_json(self.path, self.best)

    def files(self, algo: str, raw_obs: bool = False) -> dict[str, Any] | None:
        if self.best is None:
            return None
        norm = self.run_dir / "best_vecnormalize.pkl"
        files = PolicyFiles(self.run_dir / "best_model.zip", norm if norm.is_file() else None, algo, raw_obs=raw_obs)
        return {**files.to_json(), **self.best}


def read_best_bc(select_dir: Path) -> PolicyFiles:
    best_path = select_dir / "best.json"
    if not best_path.is_file():
        raise OptiqError(f"no {best_path} (run scripts/03_select_best.py first, or use --init scratch)")
    return PolicyFiles.from_json(read_json(best_path))


def _log_copy_report_to_tensorboard(run_dir: Path, text: str) -> None:
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(run_dir / "tb" / "copy_report")) as writer:
        writer.add_text("optiq/copy_report", "```\n" + text + "\n```")


@dataclass(frozen=True)
class StartRequest:
    """What a start builder needs to build (or resume) the model a stage-04 run trains."""

    config: dict[str, Any]
    algo: str
    init: str
    seed: int
    run_dir: Path
    bc_files: PolicyFiles | None
    checkpoint: Checkpoint | None
    device: str
    demos_path: Path | None = None
    bootstrap: BootstrapOptions | None = None

    @property
    def tensorboard_log(self) -> str:
        return str(self.run_dir / "tb")


def _resume(request: StartRequest, venv: Any) -> BaseAlgorithm:
    checkpoint = request.checkpoint
    assert checkpoint is not None
    console.print(f"resuming from {checkpoint.model} at {checkpoint.timesteps} steps")
    cls = model_class_for(request.algo, request.init)
    return resume_model(cls, checkpoint, venv, request.device, request.tensorboard_log)


def _start_scratch(request: StartRequest) -> BaseAlgorithm:
    """``--init scratch``: random weights, the env's tuned settings."""
    config, algo, seed = request.config, request.algo, request.seed
    if request.checkpoint is not None:
        return _resume(request, make_training_venv(config, algo, seed, norm_stats_path=request.checkpoint.vecnormalize))
    venv = make_training_venv(config, algo, seed)
    return build_model(config, algo, venv, seed, tensorboard_log=request.tensorboard_log, device=request.device)


def _start_from_bc(request: StartRequest) -> BaseAlgorithm:
    """``--init bc`` (BC weights + the extensions of finetune.<algo>.bc_rl) and ``bc_naive`` (stock PPO/SAC)."""
    config, algo, init, seed, bc_files = request.config, request.algo, request.init, request.seed, request.bc_files
    assert bc_files is not None
    if bc_files.algo != algo:
        raise OptiqError(f"the BC checkpoint trained a {bc_files.algo.upper()} policy; retrain BC with --algo {algo}")
    if request.checkpoint is not None:
        # Checkpoints store plain statistics; a BC start keeps BC's frozen.
        stats = request.checkpoint.vecnormalize
        model = _resume(
            request, freeze_observation_statistics(make_training_venv(config, algo, seed, norm_stats_path=stats))
        )
        if isinstance(model, HybridPPO):  # its demos and behaviour policy are not in the checkpoint
            _attach_demonstrations(model, request.demos_path, load_model(bc_files, request.device))
        return model
    bc_model = load_model(bc_files, request.device)
    # BC's observation statistics stay frozen: the copied actor must see inputs exactly as BC did.
    venv = freeze_observation_statistics(make_training_venv(config, algo, seed, norm_stats_path=bc_files.vecnormalize))
    model = build_model(
        config,
        algo,
        venv,
        seed,
        tensorboard_log=request.tensorboard_log,
        device=request.device,
        model_class=model_class_for(algo, init),
        **extension_kwargs(config, algo, init),
    )
    check_spaces(bc_model, venv, f"BC checkpoint {bc_files.model}")
    report = copy_bc_weights(bc_model.policy, model.policy, algo)
    write_json(request.run_dir / "copy_report.json", {"source": str(bc_files.model), **report.to_json()})
    console.print(f"[bold]BC weight copy[/] from {bc_files.model}:\n{report.to_text()}")
    _log_copy_report_to_tensorboard(request.run_dir, report.to_text())
    if init == "bc":
        if isinstance(model, HybridPPO):
            if model.hybrid.log_std_subtract:
                with th.no_grad():
                    model.policy.log_std -= model.hybrid.log_std_subtract  # less (or, if negative, more) noise
            model.apply_log_std_floor()
        if isinstance(model, DemoSAC):
            model.freeze_bc_proposer()
        _attach_demonstrations(model, request.demos_path, bc_model)
    return model


def _start_ipmd(request: StartRequest) -> BaseAlgorithm:
    """``--init ipmd``: SAC on the reward IPMD learns from the stage-01 demos (optiq/rl/ipmd.py), raw observations."""
    config, algo, seed = request.config, request.algo, request.seed
    if algo != "sac":
        raise OptiqError(f"--init ipmd trains a SAC policy; {algo.upper()} is not supported (use --algo sac)")
    if pixel_mode(config):
        raise OptiqError("--init ipmd works on state observations only (use --obs state)")
    if request.demos_path is None or not Path(request.demos_path).is_file():
        raise OptiqError("--init ipmd needs the demos of stage 01 (run scripts/01_collect_demos.py first)")
    venv = make_vec(config["env_id"], config["finetune"]["sac"]["n_envs"], seed)  # raw: the demos' observations
    if request.checkpoint is not None:
        model = _resume(request, venv)
    else:
        model = build_model(
            config,
            "sac",
            venv,
            seed,
            tensorboard_log=request.tensorboard_log,
            device=request.device,
            model_class=IPMD,
            **ipmd_kwargs(config),
        )
    assert isinstance(model, IPMD)
    model.set_demonstrations(load_demos(request.demos_path, venv.observation_space, venv.action_space))
    return model


def _start_pretrained(request: StartRequest) -> BaseAlgorithm:
    """``--init pretrained``: build (or resume) a model on a pretrained encoder; log the bootstrap report."""
    config, algo, seed, run_dir, checkpoint = (
        request.config,
        request.algo,
        request.seed,
        request.run_dir,
        request.checkpoint,
    )
    options = request.bootstrap
    if options is None:
        raise OptiqError("--init pretrained needs --pretrained PATH")
    if pixel_mode(config):
        raise OptiqError("--init pretrained starts from a state encoder; use it with --obs state")
    boot = bootstrap_model(
        config,
        algo,
        seed,
        options.pretrained,
        options.adapter_mode,
        options.torchscript_in_dim,
        options.adapter_hidden,
        options.feature_pool,
        options.obs_key,
        device=request.device,
        tensorboard_log=request.tensorboard_log,
    )
    adapters = run_dir / "adapters.pt"
    if checkpoint is None:
        save_bundle(
            boot.model, boot.adapter, boot.pre_adapter, adapters, {**options.to_json(), **boot.report.to_json()}
        )
        write_json(run_dir / "bootstrap_report.json", {**options.to_json(), **boot.report.to_json()})
        console.print(f"[bold]Pretrained bootstrap[/] from {options.pretrained}:\n{boot.report.to_text()}")
        _log_copy_report_to_tensorboard(run_dir, boot.report.to_text())
        return boot.model
    # Resume: the same adapters (frozen in obs mode), then the checkpoint's weights and statistics.
    saved = load_bundle(adapters)
    for module, key in ((boot.adapter, "adapter_state_dict"), (boot.pre_adapter, "pre_ts_adapter_state_dict")):
        if module is not None and saved.get(key) is not None:
            module.load_state_dict(saved[key])
    venv = boot.model.get_env()
    if checkpoint.vecnormalize is not None and isinstance(venv, VecNormalize):
        venv = VecNormalize.load(str(checkpoint.vecnormalize), venv.venv)
    console.print(f"resuming from {checkpoint.model} at {checkpoint.timesteps} steps")
    return resume_model(type(boot.model), checkpoint, venv, request.device, request.tensorboard_log)


# One builder per RL start of --init; the imitation baselines (IMITATION_INITS) train their own way
# (optiq.rl.imitation_methods) and are dispatched beside this in finetune().
START_BUILDERS: dict[str, Callable[[StartRequest], BaseAlgorithm]] = {
    "bc": _start_from_bc,
    "bc_naive": _start_from_bc,
    "scratch": _start_scratch,
    "pretrained": _start_pretrained,
    "ipmd": _start_ipmd,
}


def finetune(
    config: dict[str, Any],
    run_dir: str | Path,
    algo: str,
    init: str,
    seed: int,
    bc_files: PolicyFiles | None = None,
    total_timesteps: int | None = None,
    resume_from: Path | None = None,
    device: str = "auto",
    progress_bar: bool = True,
    demos_path: Path | None = None,
    bootstrap: BootstrapOptions | None = None,
    video_every: int = 0,
    video_length: int = 500,
    state_dict_out: Path | None = None,
    bc_steps: int = 0,
    bc_batch_size: int = 256,
) -> dict[str, Any]:
    """Train to ``total_timesteps`` env steps and write the run's summary.json; return it."""
    if init not in INITS:
        raise OptiqError(f"unknown --init '{init}'; choose one of: {', '.join(INITS)}")
    run_dir = Path(run_dir)
    if init in IMITATION_INITS:
        check_imitation_init(
            algo,
            init,
            config,
            resume=resume_from,
            pretrained=bootstrap,
            bc_steps=bc_steps,
            record_video=video_every,
            state_dict_out=state_dict_out,
        )
        return run_imitation(config, run_dir, algo, init, seed, demos_path, total_timesteps, device, progress_bar)
    total = int(total_timesteps or config["finetune"]["total_timesteps"])
    record = RunRecord("04_finetune_rl", run_dir, config, seed, algo=algo, init=init, total_timesteps=total)
    seed_everything(seed)
    remove_stale_temp_files(run_dir)

    checkpoint = start_checkpoint(run_dir, resume_from)
    refuse_shrunk_budget(run_dir, checkpoint, total)
    request = StartRequest(config, algo, init, seed, run_dir, bc_files, checkpoint, device, demos_path, bootstrap)
    model = START_BUILDERS[init](request)

    if bc_steps > 0 and checkpoint is None:
        if demos_path is None or not Path(demos_path).is_file():
            raise OptiqError("--bc-steps needs the demos of stage 01 (run scripts/01_collect_demos.py first)")
        if _obs_wrapper_of(model) is not None:
            raise OptiqError("--bc-steps is not available with --adapter-mode obs (demos hold raw observations)")
        metrics = pretrain_with_bc(model, Path(demos_path), bc_steps, bc_batch_size, seed)
        console.print(f"BC warm-up: {bc_steps} batches, demo NLL {metrics['nll']:.3f}, action MSE {metrics['mse']:.4f}")
    log = EvalLog(run_dir / "eval.csv")
    log.truncate_after(int(model.num_timesteps))
    best = BestPolicy(run_dir, model)
    evaluation = PeriodicEvaluation(
        make_eval_venv(config, algo, seed + 1000, normalize=isinstance(model.get_env(), VecNormalize)),
        log,
        config["eval"]["eval_freq"],
        config["eval"]["n_eval_episodes"],
        on_eval=best.update,
        reseed=evaluation_reseed(config, seed + 1000),
    )
    callbacks: list[Any] = [evaluation]
    if isinstance(model, HybridPPO) and model.hybrid.log_std_floor_tolerance is not None:
        # After the evaluation (step 0 is BC's); an env of its own, seeded apart from the others.
        tolerance_venv = make_eval_venv(config, algo, seed + 4000, normalize=isinstance(model.get_env(), VecNormalize))
        callbacks.append(NoiseToleranceCheck(tolerance_venv))
    if isinstance(model, GuardedRelease) and model.guards_release:
        # Before the evaluation, so an evaluation at the same step sees what this check released;
        # its own probe env, seeded apart from training and evaluation.
        probe_venv = make_eval_venv(config, algo, seed + 2000, normalize=isinstance(model.get_env(), VecNormalize))
        callbacks.insert(0, ReleaseGate(probe_venv))
    if isinstance(model, HybridPPO) and model.probes_drive_anchor:
        # The anchor's probes: an env of their own, seeded apart from training, evaluation and release.
        anchor_venv = make_eval_venv(config, algo, seed + 3000, normalize=isinstance(model.get_env(), VecNormalize))
        callbacks.insert(0, AnchorProbes(anchor_venv))
    if video_every > 0:
        wrapper = _obs_wrapper_of(model)
        callbacks.append(
            PeriodicVideo(
                config["env_id"], run_dir / "videos", video_every, video_length, seed, wrapper, config.get("obs")
            )
        )
    learn(model, total, run_dir, callbacks, config["finetune"]["checkpoint_freq"], progress_bar, f"{algo}_{init}")
    with evaluated_policy(model):  # what is handed on is what was evaluated
        _write_final_policy(model, run_dir, config, algo, init, bootstrap, state_dict_out)
    venv = model.get_env()
    rows = log.rows
    summary = {
        "env_id": config["env_id"],
        "algo": algo,
        "init": init,
        "seed": seed,
        "total_timesteps": int(model.num_timesteps),
        "release": _release_json(model),
        "anchor_probes": _anchor_probes_json(model),
        "log_std_floor": getattr(model, "log_std_floor_decision", None),  # NoiseToleranceCheck's decision
        "final_return": rows[-1]["return_mean"] if rows else None,
        "best_return": max(r["return_mean"] for r in rows) if rows else None,
        "unlearning": unlearning_report(rows, total),
        "bc_checkpoint": str(bc_files.model) if (init != "scratch" and bc_files) else None,
        "extensions": _extensions_json(config, algo, init),
        "bootstrap": read_json(run_dir / "bootstrap_report.json")
        if (run_dir / "bootstrap_report.json").is_file()
        else None,
        "policy": PolicyFiles(
            run_dir / "final_model.zip",
            run_dir / "vecnormalize.pkl" if isinstance(venv, VecNormalize) else None,
            algo,
            raw_obs=init == "ipmd",
        ).to_json(),
        "best_policy": best.files(algo, raw_obs=init == "ipmd"),
    }
    write_json(run_dir / "summary.json", summary)
    for name in ("final_model.zip", "vecnormalize.pkl", "best_model.zip", "eval.csv", "summary.json", "reward_net.pt"):
        record.add_artifact(run_dir / name)
    record.finish(
        final_return=summary["final_return"], unlearning=summary["unlearning"], bootstrap=summary["bootstrap"]
    )
    return summary


def _write_final_policy(
    model: BaseAlgorithm,
    run_dir: Path,
    config: dict[str, Any],
    algo: str,
    init: str,
    bootstrap: BootstrapOptions | None,
    state_dict_out: Path | None,
) -> None:
    """final_model.zip as stock SB3 (PPO.load / SAC.load without optiq), its statistics, and the
    ``--state-dict-out`` bundle; checkpoints/ keeps the resumable run."""
    if state_dict_out is not None:
        adapters = load_bundle(run_dir / "adapters.pt") if (run_dir / "adapters.pt").is_file() else {}
        meta = {"env_id": config["env_id"], "algo": algo, "init": init, **(bootstrap.to_json() if bootstrap else {})}
        write_bundle(
            state_dict_out,
            model.policy.state_dict(),
            adapters.get("adapter_state_dict"),
            adapters.get("pre_ts_adapter_state_dict"),
            meta,
        )
    save_stock_model(model, run_dir / "final_model.zip")
    venv = model.get_env()
    if isinstance(venv, VecNormalize):
        save_vecnormalize(venv, run_dir / "vecnormalize.pkl")
    if isinstance(model, IPMD):
        save_reward_net(model, run_dir / "reward_net.pt")


def _extensions_json(config: dict[str, Any], algo: str, init: str) -> dict[str, Any] | None:
    if init == "ipmd":
        return {"method": "ipmd", **ipmd_kwargs(config)}
    kwargs = extension_kwargs(config, algo, init)
    if not kwargs:
        return None
    if "hybrid" in kwargs:
        return {**dataclasses.asdict(kwargs["hybrid"]), **{k: v for k, v in kwargs.items() if k != "hybrid"}}
    return kwargs


def _release_json(model: BaseAlgorithm) -> dict[str, Any] | None:
    """What the release guard did: BC's probe return, checks passed, env steps spent on probes."""
    if not isinstance(model, GuardedRelease) or not model.guards_release:
        return None
    return {
        "reference_return": model.release_reference,
        "releases": model.release_count,
        "probe_steps": model.release_probe_steps,
    }


def _anchor_probes_json(model: BaseAlgorithm) -> dict[str, Any] | None:
    """The anchor's probes (HybridPPO, bc_probe_steps): BC's reference, the last scale, env steps spent."""
    if not isinstance(model, HybridPPO) or not model.probes_drive_anchor:
        return None
    return {
        "reference_return": model.bc_reference_return(),
        "bc_scale": model.bc_scale(),
        "probe_steps": model.bc_anchor_probe_steps,
    }


def _obs_wrapper_of(model: BaseAlgorithm) -> Any:
    """The adapter observation wrapper of ``obs`` mode, re-applied to the video env."""
    first = model.get_env().envs[0] if hasattr(model.get_env(), "envs") else None
    if isinstance(first, AdapterObsWrapper):
        return lambda env: AdapterObsWrapper(env, first.adapted, first.observation_space.shape[0], first.obs_key)
    return None


def start_checkpoint(run_dir: Path, resume_from: Path | None) -> Checkpoint | None:
    """The checkpoint a run starts from: ``--resume-from``'s, else the run's own latest, else None."""
    return _checkpoint_from_path(resume_from) if resume_from is not None else latest_checkpoint(run_dir / "checkpoints")


def _checkpoint_from_path(path: Path) -> Checkpoint:
    """A checkpoint from ``--resume PATH``: a checkpoints folder, or a model zip."""
    path = Path(path)
    if not path.exists():
        raise OptiqError(f"--resume path does not exist: {path} (give a run's checkpoints/ folder or a model zip)")
    if path.is_dir():
        checkpoint = latest_checkpoint(path if (path / "latest.json").exists() else path / "checkpoints")
        if checkpoint is None:
            raise OptiqError(f"no checkpoint in {path} (expected latest.json written by a previous run)")
        return checkpoint
    norm = path.with_name(path.name.replace("model_", "vecnormalize_").replace(".zip", ".pkl"))
    buffer = path.with_name(path.name.replace("model_", "replay_buffer_").replace(".zip", ".pkl"))
    try:
        steps = int(path.stem.split("_")[-1])
    except ValueError:
        steps = 0
    return Checkpoint(
        steps,
        path,
        norm if norm.is_file() and norm != path else None,
        buffer if buffer.is_file() and buffer != path else None,
    )
