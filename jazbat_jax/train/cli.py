"""``jazbat pretrain | finetune | evaluate | predict``: parse options into a ``RunConfig`` (or a checkpoint
path), call the library, print. Every command writes or reads a run folder (see ``loop.py``);
re-running a training command on the same ``--run-dir`` resumes it.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from jazbat_jax.cliargs import HelpFormatter, fraction, non_negative_int, positive_float, positive_int

EPILOG_PRETRAIN = """examples:
  jazbat pretrain --sample --epochs 2 --run-dir runs/sample-wisdm     # a quick try on the bundled sample
  jazbat pretrain --run-dir runs/wisdm                       # the paper: 40 epochs, WISDM watch, 1D
  jazbat pretrain --epochs 3 --max-windows 20000 --run-dir runs/wisdm-short
  jazbat pretrain --gravity removed --run-dir runs/wisdm-lin  # inputs matched to Quiroz: gravity high-passed out
  jazbat pretrain --run-dir runs/wisdm                       # again: resumes from the last checkpoint
"""
EPILOG_FINETUNE = """examples:
  jazbat finetune --from runs/sample-wisdm --sample --epochs 2 --run-dir runs/sample-tl
  jazbat finetune --from runs/wisdm --run-dir runs/quiroz-tl           # the paper: 90 epochs, all layers
  jazbat finetune --from runs/wisdm --freeze epochs --freeze-epochs 5 --run-dir runs/quiroz-tl-f5
  jazbat finetune --no-pretrain --run-dir runs/quiroz-scratch          # the no-transfer baseline (K = C)
  jazbat finetune --from runs/wisdm-lin --resample-hz 20 --run-dir runs/quiroz-matched  # matched: 20 Hz walks
"""
EPILOG_EVALUATE = """examples:
  jazbat evaluate runs/quiroz-tl                 # the run's own test split, best checkpoint
  jazbat evaluate runs/quiroz-tl --part val --checkpoint-kind last --output runs/quiroz-tl/val.json
"""
EPILOG_PREDICT = """recording formats:
  .csv / .txt   one row per sample, comma- or space-separated, an optional header line; columns
                ax,ay,az (1D and 3D models; 1D turns them into the model's magnitude), ax..az,gx..gz
                (6D), or for a 1D model a single column that already is the model's magnitude input
  .npy          the same columns as a (samples, columns) array
  SEECS CSV     the header timestamp,ax,ay,az,gx,gy,gz (see docs/data.md)
  The units, gravity (included or removed) and sampling rate must be those the model was trained on:
  `jazbat predict --checkpoint RUN --describe` prints them, and a recording that contradicts them is refused.

  The package ships one real walk to try (the first example below: ax,ay,az, linear acceleration in m/s²,
  ~25 Hz); in an installed package, jazbat_jax.data.example_recording() gives its path.

examples:
  jazbat predict jazbat_jax/sample_data/examples/quiroz2018_p02_happy_walk.csv --checkpoint runs/sample-tl --quiet
  jazbat predict walk.csv --checkpoint runs/quiroz-tl
  jazbat predict walk.npy --checkpoint runs/quiroz-tl --step 64 --output runs/walk_probs.csv
"""

DATASETS = ("wisdm", "quiroz", "seecs")


# ---------------------------------------------------------------- arguments
def _add_data_args(p: argparse.ArgumentParser, dataset_default: str) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", default=dataset_default, choices=DATASETS, help="dataset")
    g.add_argument("--data-root", type=Path, default=None,
                   help="dataset folder (default: ../shared/data or $JAZBAT_DATA_ROOT if present, else the bundled sample)")
    g.add_argument("--sample", action="store_true",
                   help="use the small real sample bundled with the package (a quick try; not for reporting)")
    g.add_argument("--input", default=None, choices=["1d", "3d", "6d"],
                   help="input channels: |a|, a_xyz or a_xyz+ω_xyz (default 1d; finetune: the pretrained model's)")
    g.add_argument("--mag-mode", default="norm_minus_g", choices=["norm_minus_g", "norm", "paper_literal"],
                   help="how 1D magnitude is computed from acceleration that includes gravity (see docs/data.md)")
    g.add_argument("--window", type=positive_int, default=None,
                   help="window length in samples (default 256; finetune: the pretrained model's)")
    g.add_argument("--step", type=positive_int, default=None,
                   help="stride between windows in samples (default: 32 for WISDM, 16 for emotion data, as in the paper)")
    g.add_argument("--device", default="watch", choices=["watch", "phone"], help="WISDM device")
    g.add_argument("--activities", default=None, help="WISDM activity codes to keep, e.g. ABCDE (default: all 18)")
    g.add_argument("--max-windows", type=positive_int, default=None,
                   help="keep a random subset of this many windows before splitting (for short runs; stored in the config)")
    g.add_argument("--on-bad-line", default="raise", choices=["raise", "skip"],
                   help="raw WISDM text files: stop at a malformed line (naming file and line), or skip and count it")
    g.add_argument("--gravity", default="as_recorded", choices=["as_recorded", "removed"],
                   help="WISDM / SEECS accelerometer: as recorded (with gravity, as in the paper), or gravity removed by "
                        "a zero-phase 0.3 Hz Butterworth high-pass per recording, to match Quiroz's linear acceleration; "
                        "a 1D input is then |a_lin| (see docs/data.md)")
    g.add_argument("--resample-hz", type=positive_float, default=None,
                   help="Quiroz only: resample each walk from ~25 Hz to this rate, e.g. 20 to match WISDM "
                        "(scipy.signal.resample_poly; default: as recorded)")
    s = p.add_argument_group("split")
    s.add_argument("--split", default="subject", choices=["subject", "random", "time"],
                   help="subject: subject-independent (recommended); random: the paper's segment split (leaky); "
                        "time: within-recording time blocks")
    s.add_argument("--test-fraction", type=fraction, default=0.2, help="fraction held out for the test set")
    s.add_argument("--val-fraction", type=fraction, default=0.1, help="fraction of the rest held out for validation")
    s.add_argument("--split-seed", type=non_negative_int, default=0, help="seed of the split")
    s.add_argument("--n-folds", type=positive_int, default=None, help="k-fold: number of folds (with --fold)")
    s.add_argument("--fold", type=non_negative_int, default=None, help="k-fold: which fold is the test set")


def _add_train_args(p: argparse.ArgumentParser, epochs: int) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=positive_int, default=epochs, help="epochs")
    g.add_argument("--batch-size", type=positive_int, default=32, help="global batch size (split over all devices)")
    g.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    g.add_argument("--adam-eps", type=positive_float, default=1e-7, help="Adam epsilon (Keras default)")
    g.add_argument("--schedule", default="constant", choices=["constant", "cosine", "warmup_cosine"],
                   help="learning-rate schedule")
    g.add_argument("--warmup-epochs", type=non_negative_int, default=0, help="warm-up epochs for warmup_cosine")
    g.add_argument("--class-weighting", default="none", choices=["none", "balanced"], help="loss weight per class")
    g.add_argument("--seed", type=non_negative_int, default=0, help="seed of initialisation, shuffling and dropout")
    g.add_argument("--keep-last", type=positive_int, default=3, help="how many of the newest checkpoints to keep")
    g.add_argument("--eval-batch-size", type=positive_int, default=256, help="batch size for validation and test")
    r = p.add_argument_group("run")
    r.add_argument("--run-dir", type=Path, default=None,
                   help="run folder (default: runs/<command>-<time>); an existing one is resumed")
    r.add_argument("--no-resume", action="store_true", help="fail instead of resuming when the run folder has checkpoints")
    r.add_argument("--no-progress", action="store_true", help="no progress bars (epoch summaries only)")
    r.add_argument("--no-plots", action="store_true", help="do not write the PNG figures")
    d = p.add_argument_group("multi-host (see docs/training.md)")
    d.add_argument("--distributed", action="store_true",
                   help="call jax.distributed.initialize() first (auto-detects SLURM/TPU/...; or give the three below)")
    d.add_argument("--coordinator", default=None, help="coordinator host:port")
    d.add_argument("--num-processes", type=positive_int, default=None, help="number of hosts")
    d.add_argument("--process-id", type=non_negative_int, default=None, help="this host's index")


def _add_checkpoint_kind(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint-kind", default="best", choices=["best", "last"],
                   help="which checkpoint of a run folder: the best by validation macro-F1, or the newest")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pretrain", help="pretrain Jazbat-Net on WISDM activities (source task)", formatter_class=HelpFormatter,
        description="Train Jazbat-Net from random initialisation on the source task (paper: WISDM 2019 watch "
                    "accelerometer, 18 activities, 40 epochs, reduction K = 18). Writes a run folder with checkpoints, "
                    "metrics.jsonl, final_eval.json and plots; re-running with the same --run-dir resumes.",
        epilog=EPILOG_PRETRAIN)
    _add_data_args(p, "wisdm")
    m = p.add_argument_group("model")
    m.add_argument("--arch", default="jazbat_net",
                   help="jazbat_net, sota_surrogate (S-754, a complexity-matched surrogate of [9], not [9]'s network), "
                        "a re-implemented published baseline (deepconvlstm, tinyhar, resnet1d), or your own model: "
                        "package.module:factory or path/to/file.py:factory (docs/your-model.md)")
    m.add_argument("--reduce-filters", "-K", type=positive_int, default=None,
                   help="filters of the 1×1 reduction conv (default: the number of classes, i.e. 18 for WISDM)")
    _add_train_args(p, epochs=40)
    p.set_defaults(func=cmd_pretrain)

    p = subparsers.add_parser(
        "finetune", help="transfer a pretrained model to the emotion data (or train the no-pretraining baseline)",
        formatter_class=HelpFormatter,
        description="Re-head a pretrained checkpoint for the target classes (drop the final Dense, new head; trunk "
                    "and BatchNorm statistics kept; new optimizer state; the target's standardisation) and train it "
                    "(paper: all layers, 90 epochs). --no-pretrain trains the same task from scratch as a baseline.",
        epilog=EPILOG_FINETUNE)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--from", dest="source", type=Path, help="pretrained run folder or checkpoint")
    src.add_argument("--no-pretrain", action="store_true", help="baseline: random initialisation, no transfer")
    _add_data_args(p, "quiroz")
    t = p.add_argument_group("transfer")
    t.add_argument("--source-checkpoint", default="best", choices=["best", "last"],
                   help="which checkpoint of the pretrained run")
    t.add_argument("--freeze", default="none", choices=["none", "trunk", "epochs"],
                   help="none: train all layers (paper); trunk: only new layers; epochs: trunk frozen for --freeze-epochs")
    t.add_argument("--freeze-epochs", type=non_negative_int, default=0, help="epochs with a frozen trunk (with --freeze epochs)")
    t.add_argument("--recreate-reduce", action="store_true",
                   help="re-create the reduction conv with K = C (default: keep the pretrained K = 18)")
    t.add_argument("--reduce-filters", "-K", type=positive_int, default=None,
                   help="--no-pretrain only: reduction width (default: C, the paper's scratch model; 18 = same as TL)")
    _add_train_args(p, epochs=90)
    p.set_defaults(func=cmd_finetune)

    p = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint on its data split (whole-set metrics)", formatter_class=HelpFormatter,
        description="Load a checkpoint (run folder, checkpoints/, best/ or last/ folder, or one epoch's folder), rebuild "
                    "the data and split stored with it and print accuracy, per-class precision / recall / F1, macro and "
                    "weighted averages, the labelled confusion matrix, and the paper's batch-averaged Algorithm 1 "
                    "variant for comparison.",
        epilog=EPILOG_EVALUATE)
    p.add_argument("checkpoint", type=Path, help="run folder or checkpoint folder")
    _add_checkpoint_kind(p)
    p.add_argument("--part", default="test", choices=["test", "val", "train", "all"], help="which part of the split")
    p.add_argument("--data-root", type=Path, default=None, help="the dataset folder, if not where the checkpoint says")
    p.add_argument("--batch-size", type=positive_int, default=256, help="evaluation batch size")
    p.add_argument("--algorithm1-batch-size", type=positive_int, default=32,
                   help="batch size of the paper's batch-averaged metrics")
    p.add_argument("--output", "-o", type=Path, default=None, help="also write the report as JSON")
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser(
        "predict", help="class probabilities per window over one recording", formatter_class=HelpFormatter,
        description="Slide the model's window over a recording and print (or write) the class probabilities of each "
                    "window and a summary (mean probability per class, majority vote). The raw columns are turned "
                    "into the model's input exactly as in training (the input definition stored in the checkpoint).",
        epilog=EPILOG_PREDICT)
    p.add_argument("recording", type=Path, nargs="?", help="recording file (see the formats below)")
    p.add_argument("--checkpoint", "-c", type=Path, required=True, help="run folder or checkpoint folder")
    _add_checkpoint_kind(p)
    p.add_argument("--describe", action="store_true", help="print the input the model expects, then stop")
    p.add_argument("--step", type=positive_int, default=None, help="stride in samples (default: the training step)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="inference batch size")
    p.add_argument("--output", "-o", type=Path, default=None, help="write per-window probabilities (.csv or .json)")
    p.add_argument("--quiet", action="store_true", help="print the summary only, not every window")
    p.set_defaults(func=cmd_predict)


# ---------------------------------------------------------------- configurations from options
def data_config_from_args(args: argparse.Namespace, input_kind: str, window: int):
    from jazbat_jax.data.config import BUNDLED, DataConfig, SplitConfig

    if args.sample and (args.data_root or args.data == "seecs"):
        raise ValueError("--sample is for --data wisdm / quiroz, without --data-root")
    root = BUNDLED if args.sample else (str(args.data_root) if args.data_root else None)
    split = SplitConfig(args.split, args.test_fraction, args.val_fraction, args.split_seed, args.n_folds, args.fold)
    return DataConfig(dataset=args.data, root=root, input_kind=input_kind, mag_mode=args.mag_mode, window=window,
                      step=args.step or 0, device=args.device, activities=args.activities,
                      max_windows=args.max_windows, on_bad_line=args.on_bad_line, split=split,
                      gravity=args.gravity, resample_hz=args.resample_hz)


def train_config_from_args(args: argparse.Namespace):
    from jazbat_jax.train.config import TrainConfig

    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, adam_eps=args.adam_eps,
                       schedule=args.schedule, warmup_epochs=args.warmup_epochs, class_weighting=args.class_weighting,
                       seed=args.seed, keep_last=args.keep_last, eval_batch_size=args.eval_batch_size)


def _run_dir(args: argparse.Namespace, command: str) -> Path:
    return args.run_dir or Path("runs") / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}"


def _fit_options(args: argparse.Namespace):
    from jazbat_jax.train.loop import FitOptions

    return FitOptions(resume=not args.no_resume, progress=not args.no_progress, plots=not args.no_plots)


def _start(args: argparse.Namespace) -> None:
    if args.distributed:
        from jazbat_jax.train.sharding import initialize_distributed

        initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    import jax

    print(f"devices: {jax.device_count()} × {jax.devices()[0].platform} over {jax.process_count()} process(es)")


# ---------------------------------------------------------------- commands
def cmd_pretrain(args: argparse.Namespace) -> int:
    from jazbat_jax import architectures
    from jazbat_jax.train.config import ModelConfig, RunConfig
    from jazbat_jax.train.trainer import pretrain

    arch = architectures.canonical(args.arch)  # a model file is recorded by its file name
    config = RunConfig(data=data_config_from_args(args, args.input or "1d", args.window or 256),
                       model=ModelConfig(arch, args.reduce_filters), train=train_config_from_args(args))
    _start(args)
    run_dir = _run_dir(args, "pretrain")
    print(f"run folder: {run_dir}")
    pretrain(config, run_dir, options=_fit_options(args))
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from jazbat_jax.data.inputs import KIND_OF_WIDTH
    from jazbat_jax.train.checkpoint import load_checkpoint
    from jazbat_jax.train.config import ModelConfig, RunConfig
    from jazbat_jax.train.trainer import finetune
    from jazbat_jax.train.transfer import HEAD, TransferConfig

    if args.no_pretrain:
        if args.freeze != "none" or args.recreate_reduce:
            raise ValueError("--freeze / --recreate-reduce need a pretrained model (--from)")
        transfer, input_kind, window = None, args.input or "1d", args.window or 256
        k = args.reduce_filters
    else:
        if args.reduce_filters is not None:
            raise ValueError("--reduce-filters is for --no-pretrain; with --from use --recreate-reduce (K = C)")
        source, _, _ = load_checkpoint(args.source, args.source_checkpoint)
        input_kind, window = args.input or KIND_OF_WIDTH[source.input_dim], args.window or source.window
        dont_load = HEAD + (("reduce/.*",) if args.recreate_reduce else ())
        transfer = TransferConfig(str(args.source), args.source_checkpoint, dont_load, args.freeze, args.freeze_epochs)
        k = None
    data = data_config_from_args(args, input_kind, window)
    config = RunConfig(data=data, model=ModelConfig("jazbat_net", k), train=train_config_from_args(args),
                       transfer=transfer)
    _start(args)
    run_dir = _run_dir(args, "finetune" if transfer else "scratch")
    print(f"run folder: {run_dir}")
    finetune(config, run_dir, options=_fit_options(args))
    return 0


def _print_confusion(report: dict) -> None:
    from tabulate import tabulate

    names = report["class_names"]
    rows = [[f"true {n}", *row] for n, row in zip(names, report["confusion"])]
    print("confusion matrix (rows: true class, columns: predicted class)")
    print(tabulate(rows, headers=["", *[f"pred {n}" for n in names]], tablefmt="simple"))


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from jazbat_jax.data.config import load_split
    from jazbat_jax.data.core import Standardizer
    from jazbat_jax.train.checkpoint import load_checkpoint
    from jazbat_jax.train.config import RunConfig
    from jazbat_jax.train.evaluate import Evaluator, evaluate_windows, inference_state
    from jazbat_jax.train.metrics import format_report
    from jazbat_jax.train.sharding import DataParallel

    model, variables, meta = load_checkpoint(args.checkpoint, args.checkpoint_kind)
    print(f"checkpoint: {meta['checkpoint']} (epoch {meta['epoch']})")
    data = RunConfig.from_dict(meta["run"]).data
    if args.data_root is not None:
        data = data.replace(root=str(args.data_root))
    ws, split = load_split(data)
    if list(ws.class_names) != list(meta["class_names"]):
        raise ValueError(f"the data's classes {list(ws.class_names)} differ from the checkpoint's {meta['class_names']}")
    idx = np.arange(len(ws)) if args.part == "all" else getattr(split, args.part)
    part = ws.subset(idx)
    dp = DataParallel.create()
    result = evaluate_windows(inference_state(model, variables, dp), part, Standardizer.from_dict(meta["standardizer"]),
                              Evaluator(dp, args.batch_size), args.algorithm1_batch_size)
    result.update(checkpoint=meta["checkpoint"], checkpoint_epoch=meta["epoch"], part=args.part,
                  data=data.to_dict())
    print(f"{args.part}: {len(part)} windows, split {split.protocol}")
    print(format_report(result["report"]))
    _print_confusion(result["report"])
    a1 = result["algorithm1_batch_averaged"]
    print(f"{a1['label']}: accuracy {a1['accuracy']:.4f}, macro-F1 {a1['macro_f1']:.4f} (batch {a1['batch_size']})")
    if args.output:
        from jazbat_jax.files import write_json

        write_json(args.output, result)
        print(f"wrote {args.output}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from jazbat_jax.data.core import Standardizer
    from jazbat_jax.train.checkpoint import load_checkpoint
    from jazbat_jax.train.config import RunConfig
    from jazbat_jax.train.predict import input_spec_of, predict_recording, read_recording, write_predictions

    model, variables, meta = load_checkpoint(args.checkpoint, args.checkpoint_kind)
    spec = input_spec_of(meta)
    names = list(meta["class_names"])
    if args.describe:
        print(f"model: {meta['checkpoint']} (epoch {meta['epoch']}), classes {', '.join(names)}")
        print(f"input: {spec.describe()}; raw columns {', '.join(spec.raw_columns)}; window {model.window} samples")
        return 0
    if args.recording is None:
        raise ValueError("give a RECORDING file (or --describe)")
    signal = read_recording(args.recording, spec)
    step = args.step or RunConfig.from_dict(meta["run"]).data.step
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
