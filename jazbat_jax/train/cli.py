"""``jazbat pretrain | finetune | evaluate | predict``: the training commands.

The lead's ``jazbat_jax/cli.py`` calls ``register(subparsers)``. Every command prints what it
does, writes a run folder (see ``loop.py``) and can be re-run on the same ``--run-dir`` to resume.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

EPILOG_PRETRAIN = """examples:
  jazbat pretrain --sample --epochs 2 --run-dir runs/sample-wisdm     # a quick try on the bundled sample
  jazbat pretrain --run-dir runs/wisdm                       # the paper: 40 epochs, WISDM watch, 1D
  jazbat pretrain --epochs 3 --max-windows 20000 --run-dir runs/wisdm-short
  jazbat pretrain --run-dir runs/wisdm                       # again: resumes from the last checkpoint
"""
EPILOG_FINETUNE = """examples:
  jazbat finetune --from runs/sample-wisdm --sample --epochs 2 --run-dir runs/sample-tl
  jazbat finetune --from runs/wisdm --run-dir runs/quiroz-tl           # the paper: 90 epochs, all layers
  jazbat finetune --from runs/wisdm --freeze epochs --freeze-epochs 5 --run-dir runs/quiroz-tl-f5
  jazbat finetune --no-pretrain --run-dir runs/quiroz-scratch          # the no-transfer baseline (K = C)
"""
EPILOG_EVALUATE = """examples:
  jazbat evaluate runs/quiroz-tl                 # the run's own test split, best checkpoint
  jazbat evaluate runs/quiroz-tl --part val --last --output val.json
"""
EPILOG_PREDICT = """examples:
  jazbat predict walk.csv --checkpoint runs/quiroz-tl
  jazbat predict walk.npy --checkpoint runs/quiroz-tl --step 64 --output walk_probs.csv
"""

DATASETS = ("wisdm", "quiroz", "seecs")
SAMPLE_FOLDERS = {"wisdm": "wisdm2019", "quiroz": "quiroz2018_emotion_walking"}


# ---------------------------------------------------------------- arguments
def _add_data_args(p: argparse.ArgumentParser, dataset_default: str, step_default: int | None) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", default=dataset_default, choices=DATASETS, help="dataset")
    g.add_argument("--data-root", type=Path, default=None,
                   help="dataset folder (default: ../shared/data or $JAZBAT_DATA_ROOT, else the bundled sample)")
    g.add_argument("--sample", action="store_true",
                   help="use the small real sample bundled with the package (a quick try; not for reporting)")
    g.add_argument("--input", default=None, choices=["1d", "3d", "6d"],
                   help="input channels: |a|, a_xyz or a_xyz+ω_xyz (default 1d; finetune: the pretrained model's)")
    g.add_argument("--mag-mode", default="norm_minus_g", choices=["norm_minus_g", "norm", "paper_literal"],
                   help="how 1D magnitude is computed (see docs/data.md)")
    g.add_argument("--window", type=int, default=None, help="window length in samples (default 256; finetune: the pretrained model's)")
    g.add_argument("--step", type=int, default=step_default,
                   help="stride between windows in samples (default: 32 for WISDM, 16 for emotion data, as in the paper)")
    g.add_argument("--device", default="watch", choices=["watch", "phone"], help="WISDM device")
    g.add_argument("--activities", default=None, help="WISDM activity codes to keep, e.g. ABCDE (default: all 18)")
    g.add_argument("--max-windows", type=int, default=None,
                   help="keep a random subset of this many windows before splitting (for short runs; reported in config)")
    s = p.add_argument_group("split")
    s.add_argument("--split", default="subject", choices=["subject", "random", "time"],
                   help="subject: subject-independent (recommended); random: the paper's segment split (leaky); "
                        "time: within-recording time blocks")
    s.add_argument("--test-fraction", type=float, default=0.2, help="fraction held out for the test set")
    s.add_argument("--val-fraction", type=float, default=0.1, help="fraction of the rest held out for validation")
    s.add_argument("--split-seed", type=int, default=0, help="seed of the split")
    s.add_argument("--n-folds", type=int, default=None, help="k-fold: number of folds (with --fold)")
    s.add_argument("--fold", type=int, default=None, help="k-fold: which fold is the test set")


def _add_train_args(p: argparse.ArgumentParser, epochs: int) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=epochs, help="epochs")
    g.add_argument("--batch-size", type=int, default=32, help="global batch size (split over all devices)")
    g.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    g.add_argument("--adam-eps", type=float, default=1e-7, help="Adam epsilon (Keras default)")
    g.add_argument("--schedule", default="constant", choices=["constant", "cosine", "warmup_cosine"],
                   help="learning-rate schedule")
    g.add_argument("--warmup-epochs", type=int, default=0, help="warm-up epochs for warmup_cosine")
    g.add_argument("--class-weighting", default="none", choices=["none", "balanced"], help="loss weight per class")
    g.add_argument("--seed", type=int, default=0, help="seed of initialisation, shuffling and dropout")
    g.add_argument("--keep-last", type=int, default=3, help="how many of the newest checkpoints to keep")
    g.add_argument("--eval-batch-size", type=int, default=256, help="batch size for validation and test")
    r = p.add_argument_group("run")
    r.add_argument("--run-dir", type=Path, default=None,
                   help="run folder (default runs/<command>-<time>); an existing one is resumed")
    r.add_argument("--no-resume", action="store_true", help="fail instead of resuming when the run folder already has checkpoints")
    r.add_argument("--no-progress", action="store_true", help="no progress bars (epoch summaries only)")
    r.add_argument("--no-plots", action="store_true", help="do not write the PNG figures")
    d = p.add_argument_group("multi-host (see docs/training.md)")
    d.add_argument("--distributed", action="store_true",
                   help="call jax.distributed.initialize() first (auto-detects SLURM/TPU/...; or give the three below)")
    d.add_argument("--coordinator", default=None, help="coordinator host:port")
    d.add_argument("--num-processes", type=int, default=None, help="number of hosts")
    d.add_argument("--process-id", type=int, default=None, help="this host's index")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep the examples' layout and show every default."""


def register(subparsers: argparse._SubParsersAction) -> None:
    fmt = _HelpFormatter

    p = subparsers.add_parser(
        "pretrain", help="pretrain Jazbat-Net on WISDM activities (source task)", formatter_class=fmt,
        description="Train Jazbat-Net from random initialisation on the source task (paper: WISDM 2019 watch "
                    "accelerometer, 18 activities, 40 epochs, reduction K = 18). Writes a run folder with checkpoints, "
                    "metrics.jsonl, final_eval.json and plots; re-running with the same --run-dir resumes.",
        epilog=EPILOG_PRETRAIN)
    _add_data_args(p, "wisdm", None)
    p.add_argument("--reduce-filters", "-K", type=int, default=None,
                   help="filters of the 1×1 reduction conv (default: the number of classes, i.e. 18 for WISDM)")
    _add_train_args(p, epochs=40)
    p.set_defaults(func=cmd_pretrain)

    p = subparsers.add_parser(
        "finetune", help="transfer a pretrained model to the emotion data (or train the no-pretraining baseline)",
        formatter_class=fmt,
        description="Re-head a pretrained checkpoint for the target classes (drop the final Dense, new head; trunk "
                    "and BatchNorm statistics kept; new optimizer state; the target's standardisation) and train it "
                    "(paper: all layers, 90 epochs). --no-pretrain trains the same task from scratch as a baseline.",
        epilog=EPILOG_FINETUNE)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--from", dest="source", type=Path, help="pretrained run folder or checkpoint")
    src.add_argument("--no-pretrain", action="store_true", help="baseline: random initialisation, no transfer")
    _add_data_args(p, "quiroz", None)
    t = p.add_argument_group("transfer")
    t.add_argument("--freeze", default="none", choices=["none", "trunk", "epochs"],
                   help="none: train all layers (paper); trunk: only new layers; epochs: trunk frozen for --freeze-epochs")
    t.add_argument("--freeze-epochs", type=int, default=0, help="epochs with a frozen trunk (with --freeze epochs)")
    t.add_argument("--recreate-reduce", action="store_true",
                   help="re-create the reduction conv with K = C (default: keep the pretrained K = 18)")
    t.add_argument("--reduce-filters", "-K", type=int, default=None,
                   help="--no-pretrain only: reduction width (default C, the paper's scratch model; 18 = same as TL)")
    _add_train_args(p, epochs=90)
    p.set_defaults(func=cmd_finetune)

    p = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint on its data split (whole-set metrics)", formatter_class=fmt,
        description="Load a checkpoint (run folder, checkpoints/, best/ or last/ folder, or one epoch's folder), rebuild "
                    "the data and split stored with it (or the options given) and print accuracy, per-class "
                    "precision / recall / F1, macro and weighted averages, the confusion matrix, and the paper's "
                    "batch-averaged Algorithm 1 variant for comparison.",
        epilog=EPILOG_EVALUATE)
    p.add_argument("checkpoint", type=Path, help="run folder or checkpoint folder")
    p.add_argument("--last", action="store_true", help="use the newest checkpoint instead of the best")
    p.add_argument("--part", default="test", choices=["test", "val", "train", "all"], help="which part of the split")
    p.add_argument("--data-root", type=Path, default=None, help="override the dataset folder stored in the checkpoint")
    p.add_argument("--batch-size", type=int, default=256, help="evaluation batch size")
    p.add_argument("--algorithm1-batch-size", type=int, default=32, help="batch size of the paper's batch-averaged metrics")
    p.add_argument("--output", "-o", type=Path, default=None, help="also write the report as JSON")
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser(
        "predict", help="class probabilities per window over one recording", formatter_class=fmt,
        description="Slide the model's window over a recording and print (or write) the class probabilities of each "
                    "window and a summary (mean probability per class, majority vote). RECORDING: a SEECS-layout CSV, "
                    "or a .npy/.csv/.txt array with the model's input columns (or 3 acceleration columns for a 1D "
                    "model, turned into the magnitude as in training). It must be sampled like the training data.",
        epilog=EPILOG_PREDICT)
    p.add_argument("recording", type=Path, help="recording file")
    p.add_argument("--checkpoint", "-c", type=Path, required=True, help="run folder or checkpoint folder")
    p.add_argument("--step", type=int, default=None, help="stride in samples (default: the training step)")
    p.add_argument("--batch-size", type=int, default=256, help="inference batch size")
    p.add_argument("--output", "-o", type=Path, default=None, help="write per-window probabilities (.csv or .json)")
    p.add_argument("--quiet", action="store_true", help="print the summary only, not every window")
    p.set_defaults(func=cmd_predict)


# ---------------------------------------------------------------- data
def data_config_from_args(args: argparse.Namespace, input_kind: str, window: int) -> dict:
    step = args.step if args.step is not None else (32 if args.data == "wisdm" else 16)
    root = args.data_root
    if args.sample:
        from jazbat_jax.data import bundled_sample_root

        if args.data_root or args.data not in SAMPLE_FOLDERS:
            raise SystemExit(f"--sample is for --data {' / '.join(SAMPLE_FOLDERS)}, without --data-root")
        root = bundled_sample_root() / SAMPLE_FOLDERS[args.data]
    cfg = {
        "dataset": args.data,
        "root": str(root) if root else None,
        "input_kind": input_kind,
        "mag_mode": args.mag_mode,
        "window": window,
        "step": step,
        "max_windows": args.max_windows,
        "split": {"protocol": args.split, "test_fraction": args.test_fraction, "val_fraction": args.val_fraction,
                  "seed": args.split_seed, "n_folds": args.n_folds, "fold": args.fold},
    }
    if args.data == "wisdm":
        cfg.update(device=args.device, activities=args.activities)
    return cfg


def load_data(cfg: dict, root_override: Path | None = None):
    """(WindowSet, Split) from a data configuration (as stored in every checkpoint)."""
    from jazbat_jax import data

    root = root_override or cfg.get("root")
    kw = dict(input_kind=cfg["input_kind"], mag_mode=cfg["mag_mode"], window=cfg["window"], step=cfg["step"])
    if cfg["dataset"] == "wisdm":
        ws = data.load_wisdm(root, device=cfg.get("device", "watch"), activities=cfg.get("activities"), **kw)
    elif cfg["dataset"] == "quiroz":
        ws = data.load_quiroz(root, **kw)
    elif cfg["dataset"] == "seecs":
        if root is None:
            raise SystemExit("--data seecs needs --data-root (the SEECS data are not public; see docs/data.md)")
        ws = data.load_seecs(root, **kw)
    else:
        raise SystemExit(f"unknown dataset {cfg['dataset']!r}")
    if cfg.get("max_windows") and cfg["max_windows"] < len(ws):
        keep = np.sort(np.random.default_rng(cfg["split"]["seed"]).choice(len(ws), cfg["max_windows"], replace=False))
        ws = ws.subset(keep)
    split = data.split_windows(ws, **cfg["split"])
    return ws, split


def _parts(ws, split):
    train, val, test = ws.subset(split.train), ws.subset(split.val), ws.subset(split.test)
    print(f"data: {ws.source or 'windows'} {len(ws)} windows × {ws.x.shape[1]} × {ws.x.shape[2]}, "
          f"{len(ws.class_names)} classes; split {split.protocol}: train {len(train)}, val {len(val)}, test {len(test)}")
    return train, val, test


def _train_config(args: argparse.Namespace, **extra):
    from jazbat_jax.train.loop import TrainConfig

    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, adam_eps=args.adam_eps,
                       schedule=args.schedule, warmup_epochs=args.warmup_epochs, class_weighting=args.class_weighting,
                       seed=args.seed, keep_last=args.keep_last, eval_batch_size=args.eval_batch_size, **extra)


def _run_dir(args: argparse.Namespace, command: str) -> Path:
    return args.run_dir or Path("runs") / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}"


def _maybe_distributed(args: argparse.Namespace) -> None:
    if args.distributed:
        from jazbat_jax.train.sharding import initialize_distributed

        initialize_distributed(args.coordinator, args.num_processes, args.process_id)


def _report_devices() -> None:
    import jax

    print(f"devices: {jax.device_count()} × {jax.devices()[0].platform} over {jax.process_count()} process(es)")


# ---------------------------------------------------------------- commands
def cmd_pretrain(args: argparse.Namespace) -> int:
    _maybe_distributed(args)
    from jazbat_jax.data import Standardizer
    from jazbat_jax.model import init_variables, jazbat_net
    from jazbat_jax.train.loop import fit

    _report_devices()
    input_kind, window = args.input or "1d", args.window or 256
    cfg = data_config_from_args(args, input_kind, window)
    ws, split = load_data(cfg)
    train, val, test = _parts(ws, split)
    c = len(ws.class_names)
    model = jazbat_net(input_kind, c, args.reduce_filters or c, window=window)
    run_dir = _run_dir(args, "pretrain")
    print(f"run folder: {run_dir}")
    fit(model, init_variables(model, args.seed), train, val, test, Standardizer.fit(train.x), _train_config(args),
        run_dir, cfg, {"split_summary": split.summary}, resume=not args.no_resume,
        progress=not args.no_progress, make_plots=not args.no_plots)
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    _maybe_distributed(args)
    from jazbat_jax.data import Standardizer
    from jazbat_jax.model import init_variables, jazbat_net
    from jazbat_jax.train.checkpoint import load_checkpoint
    from jazbat_jax.train.loop import fit
    from jazbat_jax.train.transfer import new_layer_names, reheaded_variables, transfer_model

    _report_devices()
    if args.no_pretrain:
        if args.freeze != "none" or args.recreate_reduce:
            raise SystemExit("--freeze / --recreate-reduce need a pretrained model (--from)")
        input_kind, window = args.input or "1d", args.window or 256
    else:
        src_model, src_vars, src_meta = load_checkpoint(args.source)
        src_kind = src_meta["data"].get("input_kind", {1: "1d", 3: "3d", 6: "6d"}[src_model.input_dim])
        input_kind, window = args.input or src_kind, args.window or src_model.window
        if (input_kind, window) != (src_kind, src_model.window):
            raise SystemExit(f"the pretrained model reads {src_kind} windows of {src_model.window} samples; "
                             f"got --input {input_kind} --window {window}")
        if args.reduce_filters is not None:
            raise SystemExit("--reduce-filters is for --no-pretrain; with --from use --recreate-reduce (K = C)")
        print(f"pretrained: {args.source} (epoch {src_meta['epoch']}, {len(src_meta['class_names'])} classes)")
    cfg = data_config_from_args(args, input_kind, window)
    ws, split = load_data(cfg)
    train, val, test = _parts(ws, split)
    c = len(ws.class_names)
    if args.no_pretrain:
        model = jazbat_net(input_kind, c, args.reduce_filters or c, window=window)
        variables = init_variables(model, args.seed)
        extra = {"transfer": None}
        tc = _train_config(args)
    else:
        model = transfer_model(src_model, c, args.recreate_reduce)
        variables = reheaded_variables(src_vars, model, args.seed, args.recreate_reduce)
        extra = {"transfer": {"from": str(args.source), "source_epoch": src_meta["epoch"],
                              "source_classes": src_meta["class_names"], "source_data": src_meta["data"],
                              "recreate_reduce": args.recreate_reduce}}
        tc = _train_config(args, freeze=args.freeze, freeze_epochs=args.freeze_epochs,
                           new_layers=new_layer_names(args.recreate_reduce))
        print(f"re-headed: head {src_model.num_classes}→{c} classes, reduction K = {model.reduce_filters}, "
              f"freeze = {args.freeze}; new optimizer state; target standardisation")
    run_dir = _run_dir(args, "finetune" if not args.no_pretrain else "scratch")
    print(f"run folder: {run_dir}")
    # The target's own standardisation statistics replace the source's.
    fit(model, variables, train, val, test, Standardizer.fit(train.x), tc, run_dir, cfg,
        {**extra, "split_summary": split.summary}, resume=not args.no_resume,
        progress=not args.no_progress, make_plots=not args.no_plots)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from jazbat_jax.data import Standardizer
    from jazbat_jax.train.checkpoint import load_checkpoint, resolve_checkpoint
    from jazbat_jax.train.loop import Evaluator, evaluate_windows, inference_state
    from jazbat_jax.train.metrics import format_report
    from jazbat_jax.train.sharding import DataParallel

    prefer = "last" if args.last else "best"
    model, variables, meta = load_checkpoint(args.checkpoint, prefer)
    print(f"checkpoint: {resolve_checkpoint(args.checkpoint, prefer)} (epoch {meta['epoch']})")
    ws, split = load_data(meta["data"], args.data_root)
    if list(ws.class_names) != list(meta["class_names"]):
        raise SystemExit(f"the data's classes {list(ws.class_names)} differ from the checkpoint's {meta['class_names']}")
    idx = np.arange(len(ws)) if args.part == "all" else getattr(split, args.part)
    part = ws.subset(idx)
    dp = DataParallel.create()
    result = evaluate_windows(inference_state(model, variables, dp), part, Standardizer.from_dict(meta["standardizer"]),
                              Evaluator(dp, args.batch_size), args.algorithm1_batch_size)
    result.update(checkpoint=str(args.checkpoint), checkpoint_epoch=meta["epoch"], part=args.part,
                  split=meta["data"]["split"])
    print(f"{args.part}: {len(part)} windows, split {split.protocol}")
    print(format_report(result["report"]))
    cm = np.asarray(result["report"]["confusion"])
    print("confusion (rows true, columns predicted):\n" + "\n".join(" ".join(f"{v:6d}" for v in row) for row in cm))
    a1 = result["algorithm1_batch_averaged"]
    print(f"{a1['label']}: accuracy {a1['accuracy']:.4f}, macro-F1 {a1['macro_f1']:.4f} (batch {a1['batch_size']})")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.output}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from jazbat_jax.data import Standardizer
    from jazbat_jax.train.checkpoint import load_checkpoint
    from jazbat_jax.train.predict import predict_recording, read_recording, write_predictions

    model, variables, meta = load_checkpoint(args.checkpoint)
    names = list(meta["class_names"])
    signal = read_recording(args.recording, model.input_dim, meta["data"].get("mag_mode", "norm_minus_g"))
    step = args.step or meta["data"].get("step", 16)
    result = predict_recording(model, variables, Standardizer.from_dict(meta["standardizer"]), signal, names,
                               step, args.batch_size)
    if not args.quiet:
        print("start  " + "  ".join(f"{n:>10}" for n in names))
        for s, p in zip(result["starts"], result["prob"]):
            print(f"{s:5d}  " + "  ".join(f"{v:10.4f}" for v in p))
    summ = result["summary"]
    print(f"{summ['windows']} windows of {summ['window']} samples, step {summ['step']}: predicted {summ['predicted']}")
    print("mean probability: " + ", ".join(f"{k} {v:.3f}" for k, v in summ["mean_probability"].items()))
    print("votes: " + ", ".join(f"{k} {v}" for k, v in summ["votes"].items()))
    if args.output:
        write_predictions(result, names, args.output)
        print(f"wrote {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m jazbat_jax.train.cli COMMAND ...`` (the same commands as ``jazbat COMMAND``)."""
    if argv is None:  # a real command line: huge-page malloc, as for `jazbat` (see jazbat_jax/machine.py)
        from jazbat_jax.machine import reexec_with_hugepage_malloc

        reexec_with_hugepage_malloc(sys.argv[1:])
    parser = argparse.ArgumentParser(prog="python -m jazbat_jax.train.cli")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
