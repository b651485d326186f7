"""The configuration schema: presets, overrides, defaults and validation.

A configuration is a flat JSON object: ``family`` (a name of ``samplenet.models.registry``),
the model's constructor arguments, and two sections, ``data`` and ``train``, whose keys and
defaults are ``DATA_DEFAULTS`` and ``TRAIN_DEFAULTS``. Presets live in ``configs/<name>.json``;
overrides are ``key=value`` strings (value parsed as JSON, bare words as strings) whose key is a
constructor argument or ``data.KEY`` / ``train.KEY``. Unknown keys and ill-typed values raise
``ValueError`` naming the key. A preset named ``NAME_cpu`` is preset ``NAME`` sized to train in
minutes on a CPU.
"""
import copy
import importlib.resources
import inspect
import json
from pathlib import Path

from samplenet.models.registry import constructor_defaults, family_class, family_names
from samplenet.validation import check_bool

DATA_DEFAULTS = {
    "spec": "builtin:plucked",   # source spec: folder path or builtin:NAME
    "example_seconds": 8.0,      # TBPTT: length of one example (longer files are cut)
    "window_samples": 0,         # windows: target samples per window (0 = model's choice)
    "segment_seconds": 1.0,      # segments: codec training segment length
    "valid_fraction": 0.1,       # share of files (or builtin items) in the valid split
    "test_fraction": 0.1,        # share in the test split
    "local_condition": "",       # "" or "log-mel": features computed from the audio itself
}

TRAIN_DEFAULTS = {
    "optimizer": "adam",         # adam | sgd | rmsprop
    "learning_rate": 1e-3,
    "epsilon": 1e-4,             # adam / rmsprop epsilon
    "momentum": 0.0,             # sgd / rmsprop momentum
    "clipnorm": 5.0,             # global-norm gradient clipping (0 = off)
    "clipvalue": 0.0,            # element-wise gradient clipping to +-clipvalue (0 = off)
    "lr_decay": 0.0,             # exponential decay rate per `lr_decay_steps` (0 = off)
    "lr_decay_steps": 10000,
    "batch_size": 32,
    "epochs": 10,
    "steps_per_epoch": 500,
    "validation_steps": 20,
    "early_stopping_patience": 3,
    "checkpoint_every": 1,       # epochs between checkpoints
    "checkpoint_policy": "best", # best | all
    "generate_every": 0,         # epochs between sample generations (0 = off)
    "generate_seconds": 1.0,
    "seed": 0,
    "jit_compile": False,
    "mixed_precision": "",       # "" (float32), "mixed_bfloat16" or "mixed_float16" (loss-scaled)
}

SECTIONS = {"data": DATA_DEFAULTS, "train": TRAIN_DEFAULTS}


def configs_dir():
    """The folder holding the preset JSON files (source tree or installed package data)."""
    source_tree = Path(__file__).resolve().parents[1] / "configs"
    if source_tree.is_dir():
        return source_tree
    return Path(str(importlib.resources.files("samplenet.configs")))


def preset_names():
    """Sorted names of the presets in ``configs/``."""
    return sorted(path.stem for path in configs_dir().glob("*.json"))


# A preset named NAME + CPU_SUFFIX is preset NAME sized to train in minutes on a CPU.
CPU_SUFFIX = "_cpu"


def cpu_sized_preset(name):
    """The preset that is ``name`` sized for a CPU (``NAME_cpu``), or None when there is
    none (or ``name`` is one)."""
    if name is None or name.endswith(CPU_SUFFIX) or name + CPU_SUFFIX not in preset_names():
        return None
    return name + CPU_SUFFIX


def full_size_preset(name):
    """The preset ``name`` is a CPU-sized version of (``NAME_cpu`` -> ``NAME``), or None."""
    if name is None or not name.endswith(CPU_SUFFIX):
        return None
    full = name[:-len(CPU_SUFFIX)]
    return full if full in preset_names() else None


def differences(config, other, keys):
    """``"key value (other value)"`` for each of ``keys`` (model keys, or ``section.key``) in
    which the resolved configs ``config`` and ``other`` differ."""
    def value(source, key):
        section, _, name = key.rpartition(".")
        return source[section][name] if section else source[key]
    return [f"{key} {value(config, key)} ({value(other, key)})" for key in keys
            if value(config, key) != value(other, key)]


def load_preset(name):
    """The raw preset dict of ``configs/<name>.json``; ``ValueError`` for an unknown name."""
    path = configs_dir() / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"unknown preset {name!r}; known presets: {preset_names()}")
    return json.loads(path.read_text())


def load_config_file(path):
    """Read a configuration JSON file written by hand, by a run directory or by ``suggest``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"config file {str(path)!r} is not valid JSON: {error}") from None


def parse_override(text):
    """``"key=value"`` -> ``(key, value)``; the value is JSON, or a bare string when not JSON."""
    if "=" not in text:
        raise ValueError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def _check_type(key, value, default):
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        check_bool(key, value)
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} must be an integer, got {value!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key} must be a number, got {value!r}")
        value = float(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"{key} must be a string, got {value!r}")
    elif isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key} must be a list, got {value!r}")
    return value


def apply_overrides(config, overrides):
    """Return a copy of ``config`` with overrides applied and every key checked.

    Args:
      config: a config dict with ``family``.
      overrides: ``{"key": value}`` or a list of ``"key=value"`` strings; keys are constructor
        arguments or ``data.KEY`` / ``train.KEY``.
    """
    config = resolve(config)
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        items = [parse_override(text) for text in overrides or ()]
    ctor = constructor_defaults(family_class(config["family"]))
    for key, value in items:
        section, _, name = key.partition(".")
        if name and section in SECTIONS:
            defaults = SECTIONS[section]
            if name not in defaults:
                raise ValueError(f"unknown key {key!r}; {section} keys: {sorted(defaults)}")
            config[section][name] = _check_type(key, value, defaults[name])
        elif key in ctor:
            default = ctor[key]
            config[key] = _check_type(key, value, None if default is inspect.Parameter.empty
                                      else default)
        else:
            raise ValueError(f"unknown key {key!r} for family {config['family']!r}; model keys: "
                             f"{sorted(ctor)}; or data.KEY / train.KEY")
    return config


def resolve(config):
    """Check a config dict and fill in the defaults of the model's constructor arguments and of
    the ``data``/``train`` sections, so a run's config.json names every value it was made with
    (and a mismatch on resume names both values); returns a new dict."""
    if not isinstance(config, dict) or "family" not in config:
        raise ValueError("a config must be a JSON object with a 'family' key")
    config = copy.deepcopy(config)
    cls = family_class(config["family"])
    ctor = constructor_defaults(cls)
    for key in config:
        if key not in ctor and key not in SECTIONS and key != "family":
            raise ValueError(f"unknown key {key!r} for family {config['family']!r}; model keys: "
                             f"{sorted(ctor)}")
    for key, default in ctor.items():
        if key not in config and default is not inspect.Parameter.empty:
            config[key] = json.loads(json.dumps(default))  # as config.json will hold it
    for section, defaults in SECTIONS.items():
        given = config.get(section) or {}
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise ValueError(f"unknown {section} keys {unknown}; known: {sorted(defaults)}")
        config[section] = {**defaults,
                           **{k: _check_type(f"{section}.{k}", v, defaults[k])
                              for k, v in given.items()}}
    return config


def model_arguments(config):
    """The constructor arguments held in a config (everything but family/data/train)."""
    return {k: v for k, v in config.items() if k != "family" and k not in SECTIONS}


def model_from_config(config):
    """Build the model a resolved config describes."""
    config = resolve(config)
    return family_class(config["family"])(**model_arguments(config))


def config_for(preset_or_family, overrides=None):
    """Resolved config for a preset name or a bare family name (constructor defaults)."""
    if (configs_dir() / f"{preset_or_family}.json").is_file():
        base = load_preset(preset_or_family)
    else:
        if preset_or_family not in family_names():
            raise ValueError(f"unknown preset or family {preset_or_family!r}; presets: "
                             f"{preset_names()}; families: {family_names()}")
        base = {"family": preset_or_family}
    return apply_overrides(base, overrides or {})


def build_model(preset_or_family, **overrides):
    """Build a model from a preset (``"samplernn_3tier"``) or family (``"wavenet"``).

    Keyword overrides are constructor arguments, e.g. ``build_model("wavenet", num_stacks=2)``.
    """
    return model_from_config(config_for(preset_or_family, overrides))
