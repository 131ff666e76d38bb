"""Several runs trained together in one program (``multi.fit_many``) are the same runs trained one at
a time (``loop.fit``): parameters, metrics rows, best checkpoint and final evaluation. And the
hand-written GRU and convolution gradients batch correctly under ``jax.vmap``."""
import json
from pathlib import Path

import jax
import numpy as np
import pytest
from tiny import tiny_config, tiny_model, tiny_windowset

from jazbat_jax.data.core import Standardizer
from jazbat_jax.model import init_variables
from jazbat_jax.train import multi
from jazbat_jax.train.checkpoint import load_checkpoint
from jazbat_jax.train.loop import FitOptions, Parts, fit

TIMING = {"windows_per_s", "train_seconds"}  # the only fields that differ between identical runs
OPTIONS = FitOptions(progress=False, plots=False)


def _runs(tmp: Path, tag: str, patience=None) -> list[multi.RunSpec]:
    """Three runs of one shape: different seeds, data, split sizes (so different steps per epoch) and
    class weighting."""
    specs = []
    for k, (n_train, seed, weighting) in enumerate([(40, 0, "none"), (23, 1, "balanced"), (33, 2, "none")]):
        ws = tiny_windowset(n_train + 20, seed=k)
        parts = Parts(ws.subset(np.arange(n_train)), ws.subset(np.arange(n_train, n_train + 10)),
                      ws.subset(np.arange(n_train + 10, n_train + 20)))
        model = tiny_model()
        config = tiny_config(seed=seed, class_weighting=weighting, schedule="constant", epochs=4,
                             learning_rate=3e-3, patience=patience)
        specs.append(multi.RunSpec(model, init_variables(model, seed), parts, Standardizer.fit(parts.train.x),
                                   config, tmp / f"{tag}{k}"))
    return specs


def _rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _assert_same_run(a: Path, b: Path):
    ra, rb = _rows(a), _rows(b)
    assert [r["epoch"] for r in ra] == [r["epoch"] for r in rb]
    assert [r["best"] for r in ra] == [r["best"] for r in rb]
    for x, y in zip(ra, rb):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_allclose(x[k], y[k], rtol=1e-5, atol=1e-6, err_msg=k)
    for kind in ("last", "best"):
        _, va, ma = load_checkpoint(a / "checkpoints", kind)
        _, vb, mb = load_checkpoint(b / "checkpoints", kind)
        assert ma["epoch"] == mb["epoch"] and ma["step"] == mb["step"]
        jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-5), va, vb)
    fa, fb = (json.loads((d / "final_eval.json").read_text()) for d in (a, b))
    assert fa["checkpoint_epoch"] == fb["checkpoint_epoch"]
    assert fa["report"]["confusion"] == fb["report"]["confusion"]
    assert {k for k in fa if k not in fb} == set()


def _alone(specs):
    for s in specs:
        fit(s.model, s.variables, s.parts, s.standardizer, s.config, s.run_dir, s.extra_meta, OPTIONS)


def _together_and_alone(tmp: Path, patience, resumed: int | None = None):
    together = _runs(tmp, "together", patience)
    if resumed is not None:  # that run was stopped (as by a kill) after committing epoch 1
        s = together[resumed]
        fit(s.model, s.variables, s.parts, s.standardizer, s.config, s.run_dir, s.extra_meta,
            FitOptions(progress=False, plots=False, stop_after_epoch=1))
    out = multi.fit_many(together, OPTIONS)
    alone = _runs(tmp, "alone", patience)
    _alone(alone)
    # The runs really differ from each other (else the comparison would prove little).
    assert len({json.dumps(_rows(s.run_dir)[-1]["train_loss"]) for s in alone}) == 3
    for t, a, o in zip(together, alone, out):
        _assert_same_run(Path(t.run_dir), Path(a.run_dir))
        assert o["final"]["checkpoint_epoch"] == json.loads((Path(a.run_dir) / "final_eval.json").read_text())["checkpoint_epoch"]
    return [json.loads((Path(s.run_dir) / "final_eval.json").read_text()) for s in together]


@pytest.mark.slow
def test_runs_together_equal_runs_alone(tmp_path):
    finals = _together_and_alone(tmp_path, None)
    assert all("stopped_epoch" not in f for f in finals)  # a fixed schedule: final_eval.json as before


def test_early_stopped_runs_together_equal_runs_alone(tmp_path):
    """Patience 1: two runs stop after epoch 2 (masked out of epoch 3's steps, then dropped from the
    program), one after epoch 3; alone, ``loop.fit`` stops each at the same epoch. One run of the
    program resumes from its folder after epoch 1 (masked out of the program's epoch 1)."""
    finals = _together_and_alone(tmp_path, 1, resumed=2)
    assert [f["stopped_epoch"] for f in finals] == [2, 3, 2]
    assert all(f["early_stopped"] for f in finals)


def test_runs_of_another_shape_are_refused(tmp_path):
    specs = _runs(tmp_path, "r")
    specs[1] = multi.RunSpec(**{**specs[1].__dict__, "config": tiny_config(batch_size=8)})
    with pytest.raises(ValueError, match="cannot share a program"):
        multi.fit_many(specs, OPTIONS)


def test_early_stopping_rule_and_stored_configuration():
    from jazbat_jax.train.config import RunConfig
    from jazbat_jax.train.loop import early_stopped

    rows = [{"epoch": e, "val_macro_f1": f} for e, f in enumerate([0.2, 0.5, 0.5, 0.4, 0.6, 0.6, 0.6], start=1)]
    assert [early_stopped(rows[:n], 2) for n in range(1, 8)] == [False, False, False, True, False, False, True]
    assert not any(early_stopped(rows[:n], None) for n in range(1, 8))  # a fixed schedule never stops
    assert not early_stopped([{"epoch": 9}], 1)  # no validation part: nothing to stop on
    fixed, stopping = tiny_config(), tiny_config(patience=3)
    assert "patience" not in fixed.to_dict()["train"]  # stored (and hashed) as before early stopping existed
    assert RunConfig.from_dict(stopping.to_dict()) == stopping and RunConfig.from_dict(fixed.to_dict()) == fixed
    with pytest.raises(ValueError, match="patience"):
        tiny_config(patience=0)
