"""Experiment config: profiles, JSON / TOML merge, validation with clear errors, job hashes."""
import json
import re

import pytest

from jazbat_jax.experiments import config, grid


def test_profiles():
    q, f = config.load_config("quick"), config.load_config("full")
    assert q["grid"]["inputs"] == ["1d"] and q["grid"]["pretraining"] == ["none", "watch"]
    assert q["grid"]["protocols"] == ["subject", "random"] and q["data_root"] == "bundled"
    assert f["grid"]["inputs"] == ["1d", "3d", "6d"] and f["grid"]["pretraining"] == ["none", "none_k18", "watch", "phone"]
    assert q["grid"]["labels"] == f["grid"]["labels"] == ["true", "permuted"]  # the control beside every cell
    assert (q["grid"]["random_steps"], f["grid"]["random_steps"]) == (None, [16, 64])
    assert config.pretrain_seeds(q) == [0] and config.pretrain_seeds(f) == [0, 1, 2]
    assert (f["pretrain"]["epochs"], f["finetune"]["epochs"]) == (40, 90)  # the paper's epochs
    assert (f["pretrain"]["step"], f["target"]["step"]) == (32, 16)  # the paper's steps
    assert config.load_config() == q  # quick is the default


def test_toml_and_json_merge(tmp_path):
    t = tmp_path / "g.toml"
    t.write_text('profile = "full"\n[grid]\ninputs = ["3d"]\nseeds = [7]\n[finetune]\nepochs = 2\n')
    cfg = config.load_config(None, t)
    assert cfg["profile"] == "full" and cfg["grid"]["inputs"] == ["3d"] and cfg["grid"]["seeds"] == [7]
    assert cfg["finetune"]["epochs"] == 2 and cfg["finetune"]["batch_size"] == 32  # untouched keys stay
    j = tmp_path / "g.json"
    j.write_text(json.dumps({"grid": {"folds": [1]}}))
    cfg = config.load_config("quick", j)
    assert config.folds(cfg) == [1] and config.folds(config.load_config("quick")) == [0, 1, 2]


@pytest.mark.parametrize("text, match", [
    ('[grid]\ninputs = ["2d"]\n', "grid.inputs"),
    ('[grid]\nprotocols = ["time"]\n', "grid.protocols"),
    ('[grid]\nfolds = [5]\n', "grid.folds"),
    ('[grid]\nseeds = []\n', "grid.seeds"),
    ('[grid]\nlabels = ["permuted"]\n', "must include 'true'"),
    ('[grid]\nrandom_steps = [0]\n', "grid.random_steps"),
    ('[pretrain]\nseeds = [1, 1]\n', "pretrain.seeds"),
    ('[baseline]\nfit_on = "all"\n', "baseline.fit_on"),
    ('[target]\ndataset = "seecs"\n', "needs target.root"),
    ('[pretrain]\nactivities = "ABN"\n', "pretrain.activities"),
    ('[grdi]\ninputs = ["1d"]\n', "unknown config key 'grdi'"),
    ('[grid]\nfoo = 1\n', "unknown config key 'grid.foo'"),
    ('profile = "medium"\n', "profile must be one of"),
    ('[grid\n', "cannot parse"),
])
def test_errors(tmp_path, text, match):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(config.ConfigError, match=match):
        config.load_config(None, p)


def test_file_errors(tmp_path):
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load_config(None, tmp_path / "none.toml")
    (tmp_path / "c.yaml").write_text("a: 1")
    with pytest.raises(config.ConfigError, match=".json or .toml"):
        config.load_config(None, tmp_path / "c.yaml")


def test_job_ids_are_stable_and_readable():
    cfg = config.load_config("quick")
    a, b = grid.plan(cfg), grid.plan(config.load_config("quick"))
    assert [j.id for j in a] == [j.id for j in b]
    assert a[0].id.startswith("wisdm-watch-1d-")
    assert any(j.id.startswith("quiroz-1d-none-subject-f0-s0-") for j in a)
    # named by content, not location: a moved checkout (or another machine) reuses its results
    assert re.fullmatch(r"wisdm@[0-9a-f]{16}", a[0].settings["data_root"])
    assert a[0].settings["run"]["data"]["root"] == a[0].settings["data_root"]
    # quick: 1 trunk + 2 protocols × 3 folds × 2 labels (true, permuted) × (forest + 2 deep),
    # plus 2 identity probes per random fold, plus 12 personal-model jobs (3 models × 2 splits × 2 labels)
    assert len(a) == 1 + 2 * 3 * 2 * 3 + 3 * 2 + 12



def test_a_grid_on_fewer_seeds_plans_only_the_trunks_its_cells_start_from(tmp_path):
    full = config.load_config("full")
    t = tmp_path / "g.toml"
    t.write_text('profile = "full"\n[grid]\ninputs = ["1d"]\nfolds = [0]\nseeds = [0]\n[personal]\nenabled = false\n')
    part = config.load_config(None, t)
    trunks = [j for j in grid.plan(part) if j.kind == "pretrain"]
    assert [j.name for j in trunks] == ["wisdm-watch-1d-s0", "wisdm-phone-1d-s0"]
    # the same jobs as the whole grid's: a part's results are the whole grid's results
    whole = {j.id for j in grid.plan(full)}
    assert all(j.id in whole for j in grid.plan(part))
    used = {j.settings["pretrain_job"] for j in grid.plan(full) if j.kind == "deep" and j.settings["pretrain_job"]}
    assert {j.id for j in grid.plan(full) if j.kind == "pretrain"} == used  # every planned trunk is used

def test_input_variants(tmp_path):
    plain = config.load_config("quick")
    assert config.input_variants(plain) == [(None, plain)]  # the default: one grid, the inputs as configured
    p = tmp_path / "v.toml"
    p.write_text('[grid]\ninput_variants = ["paper", "matched"]\n')
    (paper_name, paper), (matched_name, matched) = config.input_variants(config.load_config(None, p))
    assert (paper_name, matched_name) == ("paper", "matched")
    assert [j.id for j in grid.plan(paper)] == [j.id for j in grid.plan(plain)]  # the paper's cells keep their ids
    jobs = grid.plan(matched)
    # every job that sees the matched inputs is new (the personal models without a trunk use the target as
    # recorded in both variants, and are shared)
    shared = {j.id for j in jobs} & {j.id for j in grid.plan(plain)}
    assert shared and all(j.kind == "personal" and j.settings.get("pretrain_job") is None
                          for j in jobs if j.id in shared)
    assert jobs[0].settings["run"]["data"]["gravity"] == "removed"
    assert all(j.settings["run"]["data"]["resample_hz"] == 20.0 for j in jobs if j.kind == "deep")
    for text, match in [('[grid]\ninput_variants = ["fancy"]\n', "grid.input_variants"),
                        ('[grid]\ninput_variants = ["matched"]\n[pretrain]\ngravity = "removed"\n', "leave those two"),
                        ('[pretrain]\ngravity = "off"\n', "pretrain.gravity"),
                        ('[target]\nresample_hz = 0\n', "target.resample_hz must be"),
                        ('[target]\ndataset = "seecs"\nroot = "x"\nresample_hz = 20\n', "is for the Quiroz walks")]:
        p.write_text(text)
        with pytest.raises(config.ConfigError, match=match):
            config.load_config(None, p)


def test_input_variants_get_a_folder_and_report_each(tmp_path, capsys):
    from jazbat_jax.cli import main
    from jazbat_jax.experiments import report

    p = tmp_path / "v.toml"
    p.write_text('[grid]\ninput_variants = ["paper", "matched"]\n')
    # nothing ran yet: --report-only names the first variant's folder it looked for
    assert main(["experiments", "--config", str(p), "--results", str(tmp_path / "r"), "--report-only"]) == 1
    assert f"no results folder {tmp_path / 'r' / 'paper'} to report" in capsys.readouterr().err
    for name, vcfg in config.input_variants(config.load_config(None, p)):
        report.build_report(tmp_path / "r" / name, vcfg)
    paper, matched = ((tmp_path / "r" / v / "report.md").read_text() for v in ("paper", "matched"))
    assert "**Inputs**: WISDM acceleration as recorded (with gravity); the target as recorded." in paper
    assert "with gravity removed (zero-phase Butterworth high-pass, order 4 at 0.3 Hz" in matched
    assert "resampled from ~25 Hz to 20 Hz" in matched
