"""Architectures by name: this package's own, those installed packages add, and a user's own model.

A name on the command line (``jazbat profile --models``, ``jazbat accuracy-cost --archs``) or in a run
configuration (``ModelConfig.arch``) is one of:

* a built-in name: ``jazbat_net``, ``sota_surrogate`` and the re-implemented published baselines
  (``jazbat_jax.baselines``);
* an entry point of the group ``jazbat.architectures`` of an installed package (its name; found through
  ``jazbat_jax.plugins``, the door ``conversion`` joins by);
* ``package.module:factory``: a factory importable from Python's path;
* ``path/to/file.py:factory``: a factory in a file of the user's own. It is named ``file.py:factory``
  everywhere it is recorded (job ids, run folders, reports): a folder of this machine is never part of
  a name. A process finds the file again through ``register_file`` (the command line registers every
  file it is given; the experiment runner hands the files to its workers).

The factory contract (docs/your-model.md)::

    factory(*, num_classes: int, window: int, input_dim: int) -> flax.linen.Module

The returned module declares the input it takes and the classes it predicts in its fields ``window``,
``input_dim`` and ``num_classes``; they must equal what was asked (a factory whose model takes only
one window length raises ``ValueError`` with that reason). ``module(x, train=False)`` maps windows
(B, window, input_dim) to logits (B, num_classes); with ``train=True`` BatchNorm statistics live in
the ``batch_stats`` collection and dropout draws from the ``dropout`` random stream. A Flax module
class with those three fields is itself a factory.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

MODEL_PATH = "JAZBAT_MODEL_PATH"  # folders where a model file named only by its file name is looked for
_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")  # package.module:factory
_FILES: dict[str, Path] = {}  # "file.py:factory" name -> the file, registered by this process


class ArchitectureError(ValueError):
    """A name that is not an architecture, or a factory that breaks the contract."""


@dataclasses.dataclass(frozen=True)
class Architecture:
    name: str  # as recorded: built-in name, entry point name, "package.module:factory" or "file.py:factory"
    label: str  # for tables and figures
    factory: Callable[..., Any]
    origin: str  # "built-in", "entry point of <package>", "module", "file"

    @property
    def builtin(self) -> bool:
        return self.origin == "built-in"

    def build(self, num_classes: int, window: int = 256, input_dim: int = 1, **builtin_options):
        """The model for ``num_classes`` classes and windows of (window, input_dim), its fields checked."""
        if self.builtin:
            from jazbat_jax.data.inputs import KIND_OF_WIDTH

            if input_dim not in KIND_OF_WIDTH:
                raise ArchitectureError(f"{self.name} takes 1, 3 or 6 input channels, not {input_dim}")
            return self.factory(KIND_OF_WIDTH[input_dim], num_classes, window=window, **builtin_options)
        if builtin_options:
            raise ArchitectureError(f"{self.name} takes no {', '.join(builtin_options)} (only Jazbat-Net does)")
        try:
            model = self.factory(num_classes=num_classes, window=window, input_dim=input_dim)
        except (ValueError, TypeError) as e:
            raise ArchitectureError(f"{self.name}({num_classes=}, {window=}, {input_dim=}) failed: {e}") from None
        check_contract(self.name, model, num_classes, window, input_dim)
        return model


def check_contract(name: str, model: Any, num_classes: int, window: int, input_dim: int) -> None:
    import flax.linen as nn

    if not isinstance(model, nn.Module):
        raise ArchitectureError(f"{name} returned {type(model).__name__}, not a flax.linen.Module")
    asked = {"num_classes": num_classes, "window": window, "input_dim": input_dim}
    got = {k: getattr(model, k, None) for k in asked}
    wrong = [f"{k}={got[k]!r} (asked {v})" for k, v in asked.items() if got[k] != v]
    if wrong:
        raise ArchitectureError(f"{name} returned a {type(model).__name__} with {', '.join(wrong)}: the module must "
                                "declare the input it takes and its classes in fields window, input_dim, num_classes")


# ---------------------------------------------------------------- names
def builtins() -> dict[str, Architecture]:
    from jazbat_jax import baselines, model

    out = {"jazbat_net": Architecture("jazbat_net", "Jazbat-Net", model.jazbat_net, "built-in"),
           "sota_surrogate": Architecture("sota_surrogate", "S-754 surrogate", model.sota_surrogate, "built-in")}
    for name, (label, factory) in baselines.BASELINES.items():
        out[name] = Architecture(name, label, factory, "built-in")
    return out


def model_classes() -> dict[str, type]:
    """This package's model classes by name (what a checkpoint's model configuration names)."""
    from jazbat_jax import baselines, model

    return {**model.MODEL_CLASSES, **baselines.CLASSES}


def _entry_points() -> dict[str, Any]:
    from jazbat_jax import plugins

    return plugins.named(plugins.ARCHITECTURES)


def names() -> list[str]:
    """Every name that needs no import spec: built-ins, then installed entry points."""
    return list(builtins()) + sorted(set(_entry_points()) - set(builtins()))


def is_file_spec(name: str) -> bool:
    return name.rpartition(":")[0].endswith(".py")


def register_file(spec: str) -> str:
    """Make ``path/to/file.py:factory`` resolvable in this process; its recorded name ``file.py:factory``."""
    path, _, factory = spec.rpartition(":")
    file = Path(path).expanduser()
    if not file.is_file():
        raise ArchitectureError(f"model file {path} does not exist (in {spec!r}): give the path of the .py file "
                                "that defines the factory")
    name = f"{file.name}:{factory}"
    known = _FILES.get(name)
    if known is not None and known != file.resolve():
        raise ArchitectureError(f"two model files are both named {name}: {known} and {file.resolve()}; rename one")
    _FILES[name] = file.resolve()
    return name


def registered_files() -> tuple[str, ...]:
    """The file specs registered here, with their paths: what a worker process registers in turn."""
    return tuple(f"{path}:{name.rpartition(':')[2]}" for name, path in sorted(_FILES.items()))


def canonical(name: str) -> str:
    """The recorded name of what the user wrote (a file spec registered and shortened to its file name)."""
    if is_file_spec(name) and ("/" in name or Path(name.rpartition(":")[0]).is_file()):
        return register_file(name)
    return name


def check_name(name: str) -> None:
    """Refuse a name that cannot be an architecture, without importing a user's code."""
    if name in builtins() or _SPEC.match(name) or is_file_spec(name) or name in _entry_points():
        return
    raise ArchitectureError(f"unknown architecture {name!r}: choose one of {names()}, or give your own model as "
                            "package.module:factory or path/to/file.py:factory (docs/your-model.md)")


def resolve(name: str) -> Architecture:
    """The architecture a name stands for (importing a user's module or file when needed)."""
    found = builtins().get(name)
    if found is not None:
        return found
    eps = _entry_points()
    if name in eps:
        ep = eps[name]
        dist = getattr(ep.dist, "name", None) or "an installed package"
        return Architecture(name, name, _load(name, ep.load), f"entry point of {dist}")
    if is_file_spec(name):
        name = canonical(name)
        file = _FILES.get(name) or _search(name.rpartition(":")[0])
        if file is None:
            raise ArchitectureError(f"model file {name.rpartition(':')[0]} is not known to this process: give its "
                                    f"path (path/to/{name}), or name its folder in ${MODEL_PATH}")
        return Architecture(name, name, _load(name, lambda: _from_file(file, name.rpartition(":")[2])), "file")
    if _SPEC.match(name):
        module, _, attr = name.partition(":")
        return Architecture(name, name, _load(name, lambda: getattr(importlib.import_module(module), attr)), "module")
    check_name(name)
    raise AssertionError("unreachable")


def _search(file_name: str) -> Path | None:
    """A model file by name in the folders of $JAZBAT_MODEL_PATH, then the working folder: how a process
    that was not given the file's path (``jazbat evaluate RUN``, ``jazbat profile RUN``) finds it."""
    folders = [Path(f) for f in os.environ.get(MODEL_PATH, "").split(os.pathsep) if f] + [Path.cwd()]
    for folder in folders:
        if (folder / file_name).is_file():
            return (folder / file_name).resolve()
    return None


def _load(name: str, load: Callable[[], Any]) -> Callable[..., Any]:
    try:
        factory = load()
    except (ImportError, AttributeError, OSError, SyntaxError) as e:
        raise ArchitectureError(f"cannot load the model factory {name}: {type(e).__name__}: {e}") from None
    if not callable(factory):
        raise ArchitectureError(f"{name} is a {type(factory).__name__}, not a callable factory")
    return factory


def _from_file(file: Path, attr: str) -> Any:
    # One module per file and content: loading it twice gives the same classes, an edited file new ones.
    module_name = "jazbat_user_model_" + hashlib.sha256(str(file).encode() + file.read_bytes()).hexdigest()[:12]
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
    return getattr(module, attr)


def slug(name: str) -> str:
    """A name fit for files and folders: "mypkg.models:tiny" -> "mypkg.models_tiny"."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def label(name: str) -> str:
    try:
        return resolve(name).label
    except ArchitectureError:
        return name


# ---------------------------------------------------------------- identity of an external model
@functools.lru_cache(maxsize=None)  # a plan names every seed's job by it: build the model once per process
def fingerprint(name: str, num_classes: int = 18, window: int = 256, input_dim: int = 1) -> str:
    """12 hex digits over the model's configuration (its fields) and every parameter's path and shape,
    for a reference configuration: what a job id of a model defined outside this package names besides
    its import spec (the spec alone would not change when the model does)."""
    import jax
    import jax.numpy as jnp

    model = resolve(name).build(num_classes, window, input_dim)
    x = jax.ShapeDtypeStruct((1, window, input_dim), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init({"params": jax.random.key(0), "dropout": jax.random.key(0)}, x), x)
    shapes = sorted((jax.tree_util.keystr(path), list(leaf.shape))
                    for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0])
    blob = json.dumps({"config": fields(model), "variables": shapes}, sort_keys=True, default=repr)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def fields(model: Any) -> dict[str, Any]:
    """A module's constructor fields, JSON-serialisable (tuples as lists, anything else by repr)."""
    out = {}
    for f in dataclasses.fields(model):
        if f.name in ("parent", "name"):
            continue
        v = getattr(model, f.name)
        v = list(v) if isinstance(v, tuple) else v
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            v = repr(v)
        out[f.name] = v
    return out

