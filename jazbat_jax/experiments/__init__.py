"""The paper's experiments on public data: the Table VI transfer grid (inputs × pretraining),
both split protocols, a classical baseline, and a report (``config``, ``grid``, ``baseline``,
``report``, ``cli``). See docs/experiments.md."""
