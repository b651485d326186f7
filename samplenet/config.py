"""The configuration schema: presets, overrides, defaults and validation.

A configuration is a flat JSON object: ``family`` (a name of ``samplenet.models.registry``),
the model's constructor arguments, and sections: ``data`` and ``train`` for every model, and
``codec_loss`` for codecs only (models of kind ``"codec"``; see ``SECTION_KINDS``), whose keys
and defaults are ``DATA_DEFAULTS``, ``TRAIN_DEFAULTS`` and ``CODEC_LOSS_DEFAULTS``. Presets live
in ``configs/<name>.json``; overrides are ``key=value`` strings (value parsed as JSON, bare words
as strings) whose key is a constructor argument or ``SECTION.KEY`` (``train.learning_rate``,
``codec_loss.mel_weight``). Unknown keys and ill-typed values raise ``ValueError`` naming the
key; the values' ranges are checked by the code that uses them (``codec_loss``:
``samplenet.training.codec_training``). A preset named ``NAME_cpu`` is preset ``NAME`` sized to
train in minutes on a CPU.
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
    "epsilon": 1e-8,             # adam / rmsprop epsilon (benchmarks/README.md, session 5)
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

# The training objective of a codec (samplenet.training.codec_training): loss weights and
# scales, and the adversarial discriminator.
CODEC_LOSS_DEFAULTS = {
    "l1_weight": 1.0,            # waveform L1
    "mel_weight": 0.0,           # multi-scale mel loss (0 = reported, not trained on)
    "mel_windows": [64, 128, 256, 512, 1024, 2048],  # its window lengths, samples
    "num_mels": 64,              # its mel bands
    "stft_weight": 0.0,          # full-band multi-resolution STFT loss (0 = off)
    "stft_windows": [64, 128, 256, 512, 1024, 2048],  # its window lengths, samples
    "commitment_weight": 1.0,    # mean commitment loss of the quantizers
    "multiscale_waveform_weight": 0.0,  # downsampled-waveform objective (0 = off)
    "waveform_schedule": None,   # its curriculum [[first_epoch, [w_1, ..., w_S]], ...] or None
    "adversarial": False,        # train against the multi-scale STFT discriminator
    "adversarial_weight": 3.0,   # generator's hinge loss
    "feature_weight": 3.0,       # feature matching
    "discriminator_windows": [2048, 1024, 512, 256, 128],  # its STFT window lengths, samples
    "discriminator_channels": 32,
    "discriminator_learning_rate": 2e-4,  # its own Adam (betas 0.5, 0.9)
}

SECTIONS = {"data": DATA_DEFAULTS, "train": TRAIN_DEFAULTS, "codec_loss": CODEC_LOSS_DEFAULTS}
# Sections that only configs of models of one kind have (the others neither take nor show them).
SECTION_KINDS = {"codec_loss": "codec"}


def sections_of(family):
    """``{section: defaults}`` of the sections a config of ``family`` has."""
    kind = family_class(family).kind
    return {name: defaults for name, defaults in SECTIONS.items()
            if SECTION_KINDS.get(name, kind) == kind}


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
        arguments or ``SECTION.KEY`` for the family's sections (``sections_of``).
    """
    config = resolve(config)
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        items = [parse_override(text) for text in overrides or ()]
    ctor = constructor_defaults(family_class(config["family"]))
    sections = sections_of(config["family"])
    for key, value in items:
        section, _, name = key.partition(".")
        if name and section in sections:
            defaults = sections[section]
            if name not in defaults:
                raise ValueError(f"unknown key {key!r}; {section} keys: {sorted(defaults)}")
            config[section][name] = _check_type(key, value, defaults[name])
        elif key in ctor:
            default = ctor[key]
            config[key] = _check_type(key, value, None if default is inspect.Parameter.empty
                                      else default)
        else:
            raise ValueError(f"unknown key {key!r} for family {config['family']!r}; model keys: "
                             f"{sorted(ctor)}; or "
                             f"{' / '.join(f'{known}.KEY' for known in sections)}")
    return config


def resolve(config):
    """Check a config dict and fill in the defaults of the model's constructor arguments and of
    the family's sections (``sections_of``), so a run's config.json names every value it was
    made with (and a mismatch on resume names both values); returns a new dict."""
    if not isinstance(config, dict) or "family" not in config:
        raise ValueError("a config must be a JSON object with a 'family' key")
    config = copy.deepcopy(config)
    ctor = constructor_defaults(family_class(config["family"]))
    sections = sections_of(config["family"])
    for key in config:
        if key not in ctor and key not in sections and key != "family":
            raise ValueError(f"unknown key {key!r} for family {config['family']!r}; model keys: "
                             f"{sorted(ctor)}")
    for key, default in ctor.items():
        if key not in config and default is not inspect.Parameter.empty:
            config[key] = json.loads(json.dumps(default))  # as config.json will hold it
    for section, defaults in sections.items():
        given = config.get(section) or {}
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise ValueError(f"unknown {section} keys {unknown}; known: {sorted(defaults)}")
        config[section] = copy.deepcopy(defaults)
        config[section].update({k: _check_type(f"{section}.{k}", v, defaults[k])
                                for k, v in given.items()})
    return config


def model_arguments(config):
    """The constructor arguments held in a config (everything but family and the sections)."""
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
