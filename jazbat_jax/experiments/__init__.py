"""The paper's experiments on public data, as one pipeline: plan (``config``, ``jobs``, ``grid``,
``personal``, ``accuracy_cost``: typed configs → jobs named by what they compute), run (``runner``:
every job a Ray task), collect (``collect``: finished results → one table), render (``report``:
one module per section). See docs/experiments.md."""
