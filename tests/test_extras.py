"""Optional extras: a missing one is a friendly message naming the extra; video degrades to a warning."""

import sys

import pytest

from optiq.extras import MissingExtraError, require


def test_missing_module_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "rliable", None)  # import of a None entry raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'optiq\[stats\]'"):
        require("rliable", "confidence intervals")
    assert require("json", "anything").dumps([1]) == "[1]"


def test_missing_moviepy_skips_video_with_a_warning(monkeypatch, tmp_path):
    from optiq.evaluation import video
    from optiq.policies import PolicyFiles

    monkeypatch.setitem(sys.modules, "moviepy", None)
    with pytest.warns(UserWarning, match=r"optiq\[video\].*skipping video"):
        result = video.record_video(PolicyFiles(tmp_path / "none.zip", None, "ppo"), "Hopper-v5", tmp_path / "v.mp4")
    assert result is None and not (tmp_path / "v.mp4").exists()


def test_missing_wandb_is_a_warning_not_a_crash(monkeypatch, tmp_path):
    import argparse

    from optiq.tracking import tracking

    monkeypatch.setitem(sys.modules, "wandb", None)
    args = argparse.Namespace(wandb=True, wandb_project="p", wandb_entity=None, wandb_group=None, wandb_tags=[])
    with pytest.warns(UserWarning, match=r"optiq\[tracking\]"):
        with tracking(args, {}, tmp_path, "bc", "name") as run:
            assert run is None
