"""Re-heading by tree surgery, loud merge failures, freezing."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jazbat_jax.model import JazbatNet, init_variables
from jazbat_jax.train.state import create_train_state
from jazbat_jax.train.steps import jit_train_step, make_optimizer
from jazbat_jax.train.transfer import (
    ParameterMismatchError,
    TransferConfig,
    merge_params,
    param_labels,
    reheaded_variables,
    transfer_model,
    transfer_optimizer,
)
from tiny import EXPECTED, tiny_windowset
from jazbat_jax.train.input_pipeline import batches

SOURCE = JazbatNet(input_dim=1, num_classes=18, reduce_filters=18, window=32)


@pytest.fixture(scope="module")
def src():
    """A "pretrained" source tree (initialised once per module: compiling init is the slow part)."""
    v = init_variables(SOURCE, 0)
    v["batch_stats"] = jax.tree.map(lambda a: a + 0.5, v["batch_stats"])
    return v


@pytest.fixture(scope="module")
def reheaded(src):
    return reheaded_variables(src, transfer_model(SOURCE, 6), seed=1)


def _expected(kind, k, c):
    return next(e["trainable"] for e in EXPECTED["jazbat_net"] if (e["input"], e["K"], e["C"]) == (kind, k, c))


def _n_params(tree):
    return sum(int(np.size(a)) for a in jax.tree.leaves(tree))


def test_reheading_keeps_trunk_and_bn_stats_and_makes_new_head(src, reheaded):
    target = transfer_model(SOURCE, num_classes=6)
    assert (target.num_classes, target.reduce_filters) == (6, 18)
    new = reheaded
    assert new["params"]["head"]["kernel"].shape == (18, 6)
    assert new["params"]["head"]["bias"].shape == (6,)
    assert new["params"]["reduce"]["kernel"].shape == (1, 64, 18)
    for path in (("bigru", "forward", "kernel"), ("module_2", "b1_1x5", "kernel"), ("reduce", "kernel")):
        a, b = src["params"], new["params"]
        for k in path:
            a, b = a[k], b[k]
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(src["batch_stats"]["batchnorm"]["mean"], new["batch_stats"]["batchnorm"]["mean"])
    # The paper's transfer model (F=1, K=18, C=6); with T=32 the count is the same (no parameter depends on T).
    assert _n_params(new["params"]) == _expected("1d", 18, 6)


def test_reheading_can_recreate_the_reduction_with_k_equal_c(src):
    target = transfer_model(SOURCE, num_classes=6, reduce_filters=6)
    new = reheaded_variables(src, target, seed=1, dont_load=("head/.*", "reduce/.*"))
    assert new["params"]["reduce"]["kernel"].shape == (1, 64, 6)
    assert new["params"]["head"]["kernel"].shape == (6, 6)
    assert _n_params(new["params"]) == _expected("1d", 6, 6)  # the paper's Table IV model
    np.testing.assert_array_equal(new["params"]["module_3"]["aggregate"]["kernel"],
                                  src["params"]["module_3"]["aggregate"]["kernel"])


def test_one_addressing_scheme_for_not_loaded_and_new(src):
    """The patterns that keep parameters from loading are the ones that mark the layers trained first."""
    labels = param_labels(src["params"], ("head/.*", "reduce/.*"))
    assert labels["head"] == {"kernel": "new", "bias": "new"} and labels["reduce"]["kernel"] == "new"
    assert labels["bigru"]["forward"]["kernel"] == "trunk" and labels["module_1"]["aggregate"]["bias"] == "trunk"
    only_bias = param_labels(src["params"], ("head/bias",))
    assert only_bias["head"] == {"kernel": "trunk", "bias": "new"}
    with pytest.raises(ValueError, match="freeze_epochs"):
        TransferConfig("runs/x", freeze="epochs")
    with pytest.raises(Exception):
        TransferConfig("runs/x", dont_load=("head/[",))  # not a regular expression


def test_merge_fails_loudly_listing_every_problem(src):
    # Only shapes matter for the checks: an abstract target tree is enough (and needs no compile).
    model3 = JazbatNet(input_dim=3, num_classes=18, reduce_filters=18, window=32)
    target = jax.eval_shape(lambda: model3.init(jax.random.key(0), np.zeros((1, 32, 3), np.float32)))["params"]
    src = dict(src["params"])
    del src["module_3"]  # missing: 6 convs × (kernel, bias)
    src["extra"] = {"kernel": np.zeros(3)}  # unexpected
    with pytest.raises(ParameterMismatchError) as e:
        merge_params(target, src, dont_load=["head/.*"])
    msg = str(e.value)
    assert "\n" not in msg  # one line
    missing = msg.split("missing: ")[1].split(";")[0].split(", ")
    assert len(missing) == 12 and "module_3/aggregate/kernel" in missing and "module_3/b2_1x3/bias" in missing
    assert "unexpected: extra/kernel;" in msg
    wrong = msg.split("wrong shape: ")[1].split(";")[0]
    assert wrong.count(" vs ") == 2 and "bigru/forward/kernel (1, 96) vs (3, 96) expected" in wrong
    assert "head/" not in msg.split("not loaded on purpose")[0]


def _freeze_run(v, freeze, freeze_steps=0, steps=3):
    ws = tiny_windowset(16, num_classes=6)
    target = transfer_model(SOURCE, 6)
    tx = transfer_optimizer(make_optimizer(), v["params"], freeze, freeze_steps)
    state = create_train_state(target, jax.tree.map(jnp.copy, v), tx)  # the step donates its input
    before = jax.device_get(state.params)
    step = jit_train_step()
    batch = next(batches(ws.x, ws.y, 16))
    snapshots = []
    for _ in range(steps):
        state, _ = step(state, batch, np.ones(6, np.float32))
        snapshots.append(jax.device_get(state.params))
    return before, snapshots


def _changed(a, b):
    return {k: not all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a[k]), jax.tree.leaves(b[k]))) for k in a}


def test_freeze_trunk_leaves_trunk_unchanged(reheaded):
    before, snaps = _freeze_run(reheaded, "trunk")
    changed = _changed(before, snaps[-1])
    assert changed["head"]
    assert not any(v for k, v in changed.items() if k != "head"), changed


def test_freeze_for_n_steps_then_unfreeze(reheaded):
    before, snaps = _freeze_run(reheaded, "epochs", freeze_steps=2, steps=3)
    assert not _changed(before, snaps[1])["bigru"] and _changed(before, snaps[1])["head"]
    assert all(_changed(snaps[1], snaps[2]).values())  # after step 2 every layer trains


def test_train_all_layers_by_default(reheaded):
    before, snaps = _freeze_run(reheaded, "none", steps=1)
    assert all(_changed(before, snaps[0]).values())
