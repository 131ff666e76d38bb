"""Exact complexity accounting: the paper's convention, derived from the real tree, cross-checked with XLA."""
import jax.numpy as jnp
import pytest

from jazbat_jax import complexity
from jazbat_jax.model import JazbatNet, init_variables, jazbat_net, keras_gru_step, sota_surrogate
from tiny import EXPECTED as COUNTS

# (input, K, C) -> (trainable, total, MACs)
EXPECTED = {(e["input"], e["K"], e["C"]): (e["trainable"], e["total"], e["macs"]) for e in COUNTS["jazbat_net"]}


@pytest.mark.parametrize("config,expected", EXPECTED.items(), ids=str)
def test_totals(config, expected):
    kind, K, C = config
    cost = complexity.count(jazbat_net(kind, C, K))
    assert (cost.trainable, cost.total, cost.macs) == expected
    assert cost.fp32_bytes == 4 * expected[1]


def test_table_iv_blocks_and_layers():
    cost = complexity.count(jazbat_net("1d", 6, 6))
    groups = cost.groups()
    assert groups["bigru"] == {"trainable": 6_720, "non_trainable": 0, "macs": 1_622_016}
    assert groups["batchnorm"] == {"trainable": 128, "non_trainable": 128, "macs": 0}
    assert groups["modules"] == {"trainable": 20_952, "non_trainable": 0, "macs": 5_234_688}
    assert groups["reduce"] == {"trainable": 390, "non_trainable": 0, "macs": 98_304}
    assert groups["head"] == {"trainable": 42, "non_trainable": 0, "macs": 36}
    layers = {l.name: l for l in cost.layers}
    assert [l.name for l in cost.layers[:3]] == ["bigru/forward", "bigru/backward", "batchnorm"]  # forward order
    assert (layers["bigru/forward"].trainable, layers["bigru/forward"].macs) == (3_360, 811_008)
    assert (layers["module_2/b1_1x5"].kind, layers["module_2/b1_1x5"].macs) == ("Conv1D k=5", 128_000)
    assert (layers["module_3/project"].trainable, layers["module_3/project"].macs) == (4_160, 1_048_576)
    # every intermediate length is 256: nothing pools before the GAP
    assert all(l.output_shape[0] == 256 for l in cost.layers if l.name != "head")
    assert layers["head"].output_shape == (6,)
    # one module: 6,984 params / 1,744,896 MACs
    module_1 = [l for l in cost.layers if l.name.startswith("module_1/")]
    assert sum(l.trainable for l in module_1) == 6_984 and sum(l.macs for l in module_1) == 1_744_896


def test_table_v_off_by_one_diagnosis():
    """Table V's 28.55K and 29.13K are the totals for input widths 2 and 5."""
    assert complexity.count(JazbatNet(input_dim=2)).total == 28_552
    assert complexity.count(JazbatNet(input_dim=5)).total == 29_128


@pytest.mark.parametrize(
    "kind,total,trainable,macs",
    [(e["input"], e["total"], e["trainable"], e["macs"]) for e in COUNTS["sota_surrogate"]],
)
def test_surrogate_matches_the_spec(kind, total, trainable, macs):
    cost = complexity.count(sota_surrogate(kind))
    assert (cost.total, cost.trainable, cost.macs) == (total, trainable, macs)
    # within +0.1% params and +0.8% MACs of [9]'s published 754K / 157.88M (1D)
    if kind == "1d":
        assert 0 < cost.total / 754e3 - 1 < 0.001 and 0 < cost.macs / 157.88e6 - 1 < 0.008


@pytest.mark.slow  # compiles the model for XLA cost analysis
def test_xla_gru_step_matmuls_equal_the_analytic_count():
    for kind in ("1d", "3d", "6d"):
        model = jazbat_net(kind, window=32)
        report = complexity.xla_crosscheck(model, init_variables(model))
        assert report["gru_macs_match"], report
        assert report["gru_macs_analytic"] == 2 * 32 * 3 * 32 * (model.input_dim + 32)
        assert report["memory_temp_bytes"] > 0
        assert report["xla_flops_scan_corrected"] > report["analytic_flops_2x_macs"] > report["xla_flops_rolled_scan"] / 2


@pytest.mark.slow  # compiles an unrolled GRU for XLA
def test_xla_step_cost_times_steps_equals_unrolled_cost():
    """The reason for the scan correction: T unrolled steps cost exactly T × one step."""
    params = init_variables(jazbat_net("3d", window=16))["params"]["bigru"]["forward"]
    h0 = jnp.zeros((1, 32))

    def unrolled(p, xs):
        h = h0
        for t in range(xs.shape[1]):
            h = keras_gru_step(p, h, xs[:, t])
        return h

    one = complexity._flops(complexity._compiled(keras_gru_step, params, h0, jnp.zeros((1, 96))))
    eight = complexity._flops(complexity._compiled(unrolled, params, jnp.zeros((1, 8, 96))))
    assert eight == 8 * one


@pytest.mark.slow  # compiles the model for XLA cost analysis
def test_rolled_scan_is_counted_once_by_xla():
    """Why the correction is needed: a rolled scan's cost does not grow with T in cost_analysis,
    so doubling T less than doubles the whole model's flops, while the scan-corrected count does double."""
    reports = {}
    for T in (16, 32):
        model = jazbat_net(window=T)
        reports[T] = complexity.xla_crosscheck(model, init_variables(model))
    assert reports[32]["xla_flops_rolled_scan"] < 2 * reports[16]["xla_flops_rolled_scan"] - 1000
    corrected = [reports[T]["xla_flops_scan_corrected"] for T in (16, 32)]
    assert abs(corrected[1] / corrected[0] - 2) < 0.01
