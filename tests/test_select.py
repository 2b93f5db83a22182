import pytest

from optiq.atomic_io import read_json, write_json
from optiq.bc.select import choose_checkpoint, select_best_checkpoint
from optiq.errors import OptiqError

CANDIDATES = [
    {"epoch": 5, "val_loss": -1.0, "eval_return": 300.0},
    {"epoch": 10, "val_loss": -2.5, "eval_return": 250.0},
    {"epoch": 15, "val_loss": -2.5, "eval_return": 400.0},
    {"epoch": 20, "val_loss": -2.0, "eval_return": 400.0},
]


def test_lowest_val_loss_wins_and_ties_go_to_the_earlier_epoch():
    assert choose_checkpoint(CANDIDATES, "val_loss")["epoch"] == 10


def test_highest_eval_return_wins_and_ties_go_to_the_earlier_epoch():
    assert choose_checkpoint(CANDIDATES, "eval_return")["epoch"] == 15


def test_bad_criterion_and_empty_list():
    with pytest.raises(OptiqError, match="unknown selection criterion"):
        choose_checkpoint(CANDIDATES, "vibes")
    with pytest.raises(OptiqError, match="no BC checkpoints"):
        choose_checkpoint([], "val_loss")


def test_best_json_names_checkpoint_and_reason(tmp_path, tiny_config):
    bc_dir = tmp_path / "02_bc"
    entries = [
        {
            "epoch": c["epoch"],
            "algo": "ppo",
            "model": f"checkpoints/epoch_{c['epoch']:04d}.zip",
            "vecnormalize": None,
            "val_loss": c["val_loss"],
        }
        for c in CANDIDATES
    ]
    write_json(bc_dir / "checkpoints.json", {"algo": "ppo", "checkpoints": entries})
    best = select_best_checkpoint(tiny_config, bc_dir, tmp_path / "03_select", "val_loss")
    on_disk = read_json(tmp_path / "03_select" / "best.json")
    assert on_disk["epoch"] == best["epoch"] == 10
    assert on_disk["model"] == str(bc_dir / "checkpoints/epoch_0010.zip")
    assert "lowest validation loss -2.5000 of 4 checkpoints" == on_disk["reason"]
    assert len(on_disk["candidates"]) == 4
    assert read_json(tmp_path / "03_select" / "run.json")["finished"]
