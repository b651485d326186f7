"""Propose a configuration for a dataset: a preset plus overrides chosen from the measured
statistics, each with the reason for it.

The span to cover is ``max(correlation length, 90 % prediction lag)`` of the
``DatasetReport`` (rescaled if the suggested sample rate differs from the analysed one).

- ``sample_rate``: the most common rate among the files.
- ``quantization`` (SampleRNN, WaveNet): mu-law for speech-like level statistics (crest factor
  >= SPEECH_CREST_DB or RMS <= SPEECH_RMS_DBFS: many quiet samples, which mu-law resolves
  finely), else linear.
- the structure: the family's ``suggest_structure`` (WaveNet: stacks of doubling dilations;
  SampleRNN: frame sizes growing 4x up to the span; linear AR: ``order`` = the 90 % prediction
  lag, its span being that lag alone: ``span_to_cover``).
- ``train.batch_size``: the largest power of two <= MAX_BATCH_SIZE whose estimated training
  memory (``analyze_model``'s activations + 4 x weights) fits the budget; if even one sequence
  does not fit, the family's training length (``training_length_key``: WaveNet
  ``target_len``, SampleRNN ``seq_len``) is halved until it does.

The families that take suggestions are those whose class gives a ``default_preset``.

User overrides (e.g. a narrower ``dim``) are applied on top; one that replaces a suggested
value is said in the reasons.
"""
import dataclasses
import json
import math
import os
from pathlib import Path

from samplenet.analysis.dataset import DatasetReport
from samplenet.analysis.model import analyze_model
from samplenet import config as schema
from samplenet.models import registry
from samplenet.models.figures import milliseconds

DEFAULT_MEMORY_BYTES = 4 * 2 ** 30
SPEECH_CREST_DB = 15.0
SPEECH_RMS_DBFS = -25.0
MAX_BATCH_SIZE = 32
MIN_TRAINING_LENGTH = 64


@dataclasses.dataclass
class Suggestion:
    """A suggested configuration.

    Attributes:
      family, preset: the model family and the preset the config starts from.
      overrides: the keys set on top of the preset (suggested and user-given).
      config: the resolved config (``schema.resolve``), as ``train.py --config`` reads it.
      reasons: one sentence per choice.
      span_samples: the span the model should cover (samples at the suggested rate).
      covered_samples: the receptive field (WaveNet, linear AR) or top frame (SampleRNN) of
        the suggested model.
      training_memory_bytes: its estimated training memory at the suggested batch.
    """

    family: str
    preset: str
    overrides: dict
    config: dict
    reasons: list
    span_samples: int
    covered_samples: int
    training_memory_bytes: int

    def to_dict(self):
        return dataclasses.asdict(self)

    def write(self, path):
        """Write ``config`` as JSON to ``path`` (folders created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.config, indent=2) + "\n")
        return path

    def __str__(self):
        lines = [f"suggested {self.family} config (preset {self.preset}):"]
        lines += [f"  - {reason}" for reason in self.reasons]
        return "\n".join(lines)


def _gib(count):
    return f"{count / 2 ** 30:.2f} GiB"


def speech_like(report):
    """``(True if the level statistics look like speech, the reason)``."""
    crest, rms = report.crest_factor_db, report.rms_dbfs
    signs = []
    if crest is not None and crest >= SPEECH_CREST_DB:
        signs.append(f"crest factor {crest:.1f} dB >= {SPEECH_CREST_DB:g} dB")
    if rms is not None and rms <= SPEECH_RMS_DBFS:
        signs.append(f"RMS {rms:.1f} dBFS <= {SPEECH_RMS_DBFS:g} dBFS")
    if signs:
        return True, (f"quantization mu-law: {' and '.join(signs)}: speech-like levels, many "
                      f"quiet samples, which mu-law resolves finely")
    crest_text = "n/a" if crest is None else f"{crest:.1f} dB"
    rms_text = "-inf" if rms is None else f"{rms:.1f} dBFS"
    return False, (f"quantization linear: crest factor {crest_text} (< {SPEECH_CREST_DB:g}) and "
                   f"RMS {rms_text} (> {SPEECH_RMS_DBFS:g}) are not speech-like: a dense, loud "
                   f"signal uses the whole range evenly")


def suggestable_families():
    """Names of the registered families that take suggestions (a ``default_preset``)."""
    return sorted(name for name in registry.family_names()
                  if registry.family_class(name).default_preset)


def check_family(family):
    """The class of ``family``; ``ValueError`` unless it is one ``suggest_config`` knows."""
    known = suggestable_families()
    if family not in known:
        raise ValueError(f"suggest_config knows the families {known}, got {family!r}")
    return registry.family_class(family)


def _data_spec(report):
    spec = report.source
    if not spec.startswith("builtin:") and os.path.isdir(spec):
        return os.path.abspath(spec)
    return spec


def _fit_batch(preset, settings, family_class, memory_bytes, reasons):
    """Choose ``train.batch_size`` (halving the training length if needed): returns
    ``(settings with the batch, estimated training memory, the model built)``."""
    length_key = family_class.training_length_key
    while True:
        config = schema.config_for(preset, settings)
        model = schema.model_from_config(config)
        report = analyze_model(model, batch_size=1, measure=False)
        weights = report.training_memory_bytes - report.activation_bytes
        fits = (memory_bytes - weights) // max(report.activation_bytes, 1)
        if fits >= 1:
            break
        length = config.get(length_key) if length_key else None
        step = family_class.training_length_step(config)
        if length is None or length // 2 < max(MIN_TRAINING_LENGTH, step):
            raise ValueError(f"a memory budget of {_gib(memory_bytes)} does not fit one "
                             f"training sequence of this model ({_gib(weights)} for weights, "
                             f"gradients and Adam, {_gib(report.activation_bytes)} of "
                             f"activations); raise it or choose a smaller model")
        settings[length_key] = max(step, (length // 2) // step * step)
        reasons.append(f"{length_key} {settings[length_key]}: halved from {length} to fit the "
                       f"memory budget")
    if "train.batch_size" in settings:
        batch = settings["train.batch_size"]
    else:
        batch = 2 ** int(math.log2(min(fits, MAX_BATCH_SIZE)))
        settings["train.batch_size"] = batch
        reasons.append(f"train.batch_size {batch}: the largest power of two <= "
                       f"{MAX_BATCH_SIZE} within the {_gib(memory_bytes)} budget "
                       f"({_gib(report.activation_bytes)} of activations per sequence of "
                       f"{report.seq_len} samples, {_gib(weights)} for weights, gradients and "
                       f"Adam)")
    return settings, weights + batch * report.activation_bytes, model


def suggest_config(dataset_report, family, *, preset=None, overrides=None,
                   memory_bytes=DEFAULT_MEMORY_BYTES):
    """Suggest a configuration of ``family`` for the measured dataset.

    Args:
      dataset_report: a ``DatasetReport`` from ``analyze_dataset``.
      family: a family that takes suggestions (``suggestable_families()``: ``"samplernn"``,
        ``"wavenet"``, ``"linear_ar"``).
      preset: the preset to start from (default the family's ``default_preset``); it must be
        of ``family``.
      overrides: ``{"key": value}`` or ``["key=value", ...]`` applied on top of the suggestion
        (e.g. narrower widths); they win over suggested values.
      memory_bytes: the training memory budget for the batch size (default 4 GiB).
    Returns:
      a ``Suggestion`` (module docstring: the rules).
    """
    if not isinstance(dataset_report, DatasetReport):
        raise ValueError(f"dataset_report must be a DatasetReport from analyze_dataset, got "
                         f"{type(dataset_report).__name__}")
    family_class = check_family(family)
    if isinstance(memory_bytes, bool) or not isinstance(memory_bytes, (int, float)) \
            or not memory_bytes > 0:
        raise ValueError(f"memory_bytes must be a number > 0, got {memory_bytes!r}")
    preset = preset or family_class.default_preset
    base = schema.config_for(preset)
    if base["family"] != family:
        raise ValueError(f"preset {preset!r} is a {base['family']!r} model, not {family!r}")
    user = dict(schema.parse_override(text) for text in overrides) \
        if isinstance(overrides, (list, tuple)) else dict(overrides or {})
    report = dataset_report
    rate = report.most_common_sample_rate
    scale = rate / report.sample_rate
    correlation = math.ceil(report.correlation_length_samples * scale)
    lag = math.ceil(report.predictable_lag_samples * scale)
    reasons = [f"sample_rate {rate}: the most common rate ({report.sample_rates[rate]} of "
               f"{report.num_files} files)"]
    span, rule = family_class.span_to_cover(correlation, lag, report.correlation_limited)
    reasons.append(f"span to cover: {span} samples ({milliseconds(span, rate)}){rule}")
    choices = {"sample_rate": rate, "data.spec": _data_spec(report)}
    if family_class.suggests_quantization:
        mu_law, reason = speech_like(report)
        choices["quantization"] = "mu-law" if mu_law else "linear"
        reasons.append(reason)
    base = schema.config_for(preset, user)
    structure, covered, reason = family_class.suggest_structure(
        {**base, "sample_rate": rate}, span, report)
    reason = list(reason)
    reason[0] += ("; it covers the span" if covered >= span else
                  "; it falls short of the span: the largest this family is suggested at")
    reasons += reason
    choices.update(structure)
    for key in sorted(set(user) & set(choices)):
        reasons.append(f"{key} {user[key]!r}: your override, instead of the suggested "
                       f"{choices[key]!r}")
    settings, memory, model = _fit_batch(preset, {**choices, **user}, family_class,
                                         memory_bytes, reasons)
    config = schema.config_for(preset, settings)
    covered = model.covered_samples()
    return Suggestion(family=family, preset=preset, overrides=settings, config=config,
                      reasons=reasons, span_samples=span, covered_samples=int(covered),
                      training_memory_bytes=int(memory))
