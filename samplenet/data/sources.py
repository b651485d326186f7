"""Data sources: where the audio comes from, chosen by one spec string (``--data``).

A spec is either
- a folder path: every audio file below it (``AUDIO_EXTENSIONS``, case-insensitive), checked
  cheaply at scan time with ``samplenet.audio.info``; files that cannot be used are skipped and
  listed in ``source.skipped``. A folder in the Speech Commands layout (class subfolders plus
  ``validation_list.txt`` and ``testing_list.txt`` at the top) gives a labelled source split by
  those lists; or
- ``builtin:NAME`` with optional ``?key=value&key=value`` parameters: synthetic items made on
  demand by a generator of ``samplenet.data.builtin`` (``plucked``, ``ar2``, ``sines``).

Every source splits its examples into "train", "valid" and "test" deterministically: by the
Speech Commands lists, or else by a stable hash of each example's key (``hash_splits``).
"""
import collections
import dataclasses
import hashlib
import logging
import math
import os
import pathlib

import numpy as np

from samplenet import audio
from samplenet.data import builtin
from samplenet.validation import check_int, check_seconds

SPLITS = frozenset({"train", "valid", "test", "all"})
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au"})
BUILTIN_PREFIX = "builtin:"
SPEECH_COMMANDS_LISTS = (("validation_list.txt", "valid"), ("testing_list.txt", "test"))
BACKGROUND_NOISE_FOLDER = "_background_noise_"
# Query parameters every built-in source takes: name -> (type, default).
BUILTIN_PARAMETERS = {"num_items": (int, 64), "item_seconds": (float, 4.0),
                      "sample_rate": (int, 16000), "seed": (int, 0)}
_MAX_LISTED_PROBLEMS = 10

_logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Example:
    """One item of a source.

    key: its name within the source: the path relative to the folder with POSIX separators,
      or ``"NAME/0007"`` for a built-in item.
    label: its class index in ``source.class_names``; -1 when the source is unlabelled.
    """

    key: str
    label: int = -1


def split_position(key):
    """A stable number in [0, 1) for ``key``: the first 8 bytes of its SHA-256 / 2**64.

    The same on every run and machine (unlike Python's ``hash``).
    """
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def check_fractions(valid_fraction, test_fraction):
    """Raises ValueError unless both fractions are numbers in [0, 1) summing to less than 1."""
    for name, value in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (
                0.0 <= value < 1.0):
            raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    if valid_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"valid_fraction + test_fraction must be < 1 (something must be left to train on), "
            f"got {valid_fraction!r} + {test_fraction!r}")


def hash_splits(keys, valid_fraction, test_fraction):
    """The split of each key: a list of "train", "valid" or "test", one per key.

    A key goes to "valid" if its ``split_position`` is below ``valid_fraction``, to "test" if
    below ``valid_fraction + test_fraction``, else to "train"; so each key's split depends only
    on the key and the fractions. The one exception keeps "train" from being empty: if no key
    lands there, the key with the highest position moves to "train". "valid" and "test" may be
    empty when there are few keys (a handful of items at the default 10 % each).
    """
    check_fractions(valid_fraction, test_fraction)
    positions = [split_position(key) for key in keys]
    splits = ["valid" if p < valid_fraction else
              "test" if p < valid_fraction + test_fraction else "train" for p in positions]
    if positions and "train" not in splits:
        splits[int(np.argmax(positions))] = "train"
    return splits


class Source:
    """A set of audio examples with a deterministic train/valid/test split.

    Attributes:
      name: the spec the source was made from.
      sample_rate: Hz of the audio ``load`` returns.
      num_classes: number of classes; 0 when unlabelled.
      class_names: tuple of str, ``class_names[example.label]`` is an example's class.
      skipped: list of (path, reason) for the files found but left out.
    """

    def __init__(self, name, sample_rate, examples, splits, *, class_names=(), skipped=()):
        """examples: list of Example; splits: one of "train"/"valid"/"test" per example."""
        self.name = name
        self.sample_rate = int(sample_rate)
        self.class_names = tuple(class_names)
        self.skipped = list(skipped)
        self._examples = {"all": list(examples)}
        for split in SPLITS - {"all"}:
            self._examples[split] = [e for e, s in zip(examples, splits) if s == split]

    @property
    def num_classes(self):
        return len(self.class_names)

    def examples(self, split):
        """The examples of ``split`` ("train", "valid", "test" or "all"), sorted by key."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        return list(self._examples[split])

    def load(self, example):
        """The audio of ``example``: float32 (time,) in [-1, 1] at ``sample_rate``."""
        raise NotImplementedError

    def __repr__(self):
        counts = ", ".join(f"{split} {len(self._examples[split])}"
                           for split in ("train", "valid", "test"))
        return (f"<{type(self).__name__} {self.name!r}: {self.sample_rate} Hz, "
                f"{len(self._examples['all'])} examples ({counts}), "
                f"{self.num_classes} classes, {len(self.skipped)} skipped>")


class FolderSource(Source):
    """The audio files below a folder (see the module docstring).

    Each candidate file is checked with ``samplenet.audio.info``; unreadable files and files
    with no frames go to ``skipped``. ``sample_rate`` is the one requested, else the most
    common rate among the files (the higher one on a tie); ``load`` resamples to it and raises
    ``samplenet.audio.AudioError`` naming the file if it holds NaN or only silence.

    In the Speech Commands layout the classes are the top-level subfolders holding audio files
    (sorted; ``_background_noise_`` and hidden folders are ignored, audio files at the top
    level are skipped), and a file's split comes from the two list files: "valid" if listed in
    ``validation_list.txt``, "test" if in ``testing_list.txt``, else "train"
    (``valid_fraction`` and ``test_fraction`` are then unused).
    """

    def __init__(self, path, sample_rate=None, *, valid_fraction=0.1, test_fraction=0.1,
                 example_seconds=0.0):
        check_fractions(valid_fraction, test_fraction)
        check_seconds("example_seconds", example_seconds, allow_zero=True)
        self.root = pathlib.Path(path)
        if not self.root.exists():
            raise ValueError(
                f"data folder {str(path)!r} does not exist (a data spec is a folder of audio "
                f"files or one of {', '.join(builtin_specs())})")
        if not self.root.is_dir():
            raise ValueError(f"data path {str(path)!r} is a file, not a folder of audio files")
        keys = _audio_keys(self.root)
        if not keys:
            raise ValueError(f"no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) "
                             f"in data folder {str(path)!r}")
        if all((self.root / name).is_file() for name, _ in SPEECH_COMMANDS_LISTS):
            keys, labels, class_names, skipped = _speech_commands_classes(self.root, keys)
        else:
            labels, class_names, skipped = {key: -1 for key in keys}, (), []
        rates = {}
        for key in keys:
            file_path = self.root / key
            try:
                info = audio.info(file_path)
            except audio.AudioError as error:  # its message starts with the path
                skipped.append((str(file_path), str(error).removeprefix(f"{file_path}: ")))
                continue
            if info.frames == 0:
                skipped.append((str(file_path), "no audio frames"))
                continue
            if info.truncated and info.seconds < example_seconds:
                skipped.append((str(file_path), f"{info.truncation()}, shorter than one example "
                                                f"({example_seconds:g} s)"))
                continue
            if info.truncated:
                _logger.warning("data folder %r: %s: %s; using what it holds", str(path),
                                file_path, info.truncation())
            rates[key] = info.sample_rate
        if not rates:
            raise ValueError(f"no usable audio files in data folder {str(path)!r}: "
                             + _list_problems(skipped))
        if skipped:
            _logger.warning("data folder %r: skipping %d file(s): %s", str(path), len(skipped),
                            _list_problems(skipped))
        if sample_rate is None:
            counts = collections.Counter(rates.values())
            sample_rate = max(counts, key=lambda rate: (counts[rate], rate))
        examples = [Example(key, labels[key]) for key in rates]
        if class_names:
            splits = _speech_commands_splits(self.root, rates)
        else:
            splits = hash_splits(list(rates), valid_fraction, test_fraction)
        super().__init__(str(path), sample_rate, examples, splits, class_names=class_names,
                         skipped=skipped)

    def load(self, example):
        return audio.load(self.root / example.key, self.sample_rate, reject_silent=True)


def _audio_keys(root):
    """Sorted POSIX paths, relative to root, of the files below it with an audio extension."""
    keys = []
    for folder, _, files in os.walk(root):
        for file_name in files:
            if os.path.splitext(file_name)[1].lower() in AUDIO_EXTENSIONS:
                keys.append((pathlib.Path(folder) / file_name).relative_to(root).as_posix())
    return sorted(keys)


def _speech_commands_classes(root, keys):
    """(keys inside class folders, {key: label}, class names, skipped) for that layout."""
    folders = {key.split("/")[0] for key in keys if "/" in key}
    class_names = tuple(sorted(folder for folder in folders
                               if folder != BACKGROUND_NOISE_FOLDER and not folder.startswith(".")))
    index = {name: label for label, name in enumerate(class_names)}
    labels = {key: index[key.split("/")[0]] for key in keys
              if "/" in key and key.split("/")[0] in index}
    skipped = [(str(root / key), "audio file outside the class folders of a Speech Commands "
                                 "layout") for key in keys if "/" not in key]
    return list(labels), labels, class_names, skipped


def _speech_commands_splits(root, keys):
    """The split of each key from validation_list.txt and testing_list.txt."""
    listed = {}
    for name, split in SPEECH_COMMANDS_LISTS:
        for line in (root / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                listed[line.strip()] = split
    return [listed.get(key, "train") for key in keys]


def _list_problems(skipped):
    shown = "; ".join(f"{path}: {reason}" for path, reason in skipped[:_MAX_LISTED_PROBLEMS])
    more = len(skipped) - _MAX_LISTED_PROBLEMS
    return shown + (f"; and {more} more" if more > 0 else "")


class BuiltinSource(Source):
    """Synthetic items from a generator of ``samplenet.data.builtin``, made on demand.

    Item i (key ``"NAME/000i"``) is ``generator.generate(np.random.default_rng([seed, i]),
    num_samples)``: the same on every run and machine, different for another seed.
    """

    def __init__(self, name, generator_name, generator, *, num_items, item_seconds, seed,
                 valid_fraction=0.1, test_fraction=0.1):
        self.generator = generator
        self.num_items = num_items
        self.item_seconds = item_seconds
        self.seed = seed
        self.num_samples = int(round(item_seconds * generator.sample_rate))
        if self.num_samples < 1:
            raise ValueError(f"item_seconds={item_seconds!r} gives items of no samples "
                             f"at {generator.sample_rate} Hz in {name!r}")
        width = max(4, len(str(num_items - 1)))
        keys = [f"{generator_name}/{index:0{width}d}" for index in range(num_items)]
        self._index = {key: index for index, key in enumerate(keys)}
        super().__init__(name, generator.sample_rate, [Example(key) for key in keys],
                         hash_splits(keys, valid_fraction, test_fraction))

    @property
    def coefficients(self):
        """The true coefficients of an AR source (``builtin:ar2``); see ``builtin.Ar2``."""
        try:
            return self.generator.coefficients
        except AttributeError:
            raise AttributeError(
                f"{self.name!r} has no true coefficients (builtin:ar2 has)") from None

    def load(self, example):
        index = self._index.get(example.key)
        if index is None:
            raise ValueError(f"{example.key!r} is not an example of {self.name!r}")
        return self.generator.generate(np.random.default_rng([self.seed, index]),
                                       self.num_samples)


def builtin_specs():
    """The ``builtin:NAME`` specs, sorted."""
    return [BUILTIN_PREFIX + name for name in sorted(builtin.GENERATORS)]


def from_spec(spec, sample_rate=None, *, valid_fraction=0.1, test_fraction=0.1, seed=0,
              example_seconds=0.0):
    """The source named by ``spec`` (see the module docstring).

    Args:
      spec: a folder path (str or path-like) or ``"builtin:NAME[?key=value&...]"``. Built-in
        parameters: ``num_items`` (int, default 64), ``item_seconds`` (float, 4.0),
        ``sample_rate`` (int, 16000), ``seed`` (int), plus the generator's own
        (``builtin.GENERATORS[NAME].PARAMETERS``, floats).
      sample_rate: Hz the audio is loaded at; None: the folder's most common rate, or the
        built-in's ``sample_rate`` parameter. A built-in spec whose ``sample_rate`` parameter
        differs from this is an error.
      valid_fraction, test_fraction: shares of the hash split, in [0, 1), sum < 1.
      seed: the generation seed of built-in items unless the spec sets ``seed`` (the splits do
        not depend on it).
      example_seconds: a folder's files that were cut short (their header declares more frames
        than they hold) are skipped when they hold less than this (one training example,
        ``samplenet.data.pipelines.example_seconds``); longer ones are used with a warning.

    Raises ValueError for a bad spec, parameter or folder.
    """
    if sample_rate is not None:
        check_int("sample_rate", sample_rate, 1)
    check_int("seed", seed, 0)
    spec = os.fspath(spec)
    if not spec.startswith(BUILTIN_PREFIX):
        return FolderSource(spec, sample_rate, valid_fraction=valid_fraction,
                            test_fraction=test_fraction, example_seconds=example_seconds)
    generator_name, _, query = spec[len(BUILTIN_PREFIX):].partition("?")
    if generator_name not in builtin.GENERATORS:
        raise ValueError(f"unknown built-in source {generator_name!r} in {spec!r}; valid: "
                         f"{', '.join(builtin_specs())}")
    generator_class = builtin.GENERATORS[generator_name]
    types = {key: kind for key, (kind, _) in BUILTIN_PARAMETERS.items()}
    types.update({key: float for key in generator_class.PARAMETERS})
    values = {key: default for key, (_, default) in BUILTIN_PARAMETERS.items()}
    values.update(generator_class.PARAMETERS, seed=seed)
    given = set()
    for item in filter(None, query.split("&")):
        key, has_value, text = item.partition("=")
        if key not in types or not has_value:
            raise ValueError(f"bad parameter {item!r} in {spec!r}; valid parameters (as "
                             f"key=value): {', '.join(sorted(types))}")
        if key in given:
            raise ValueError(f"parameter {key!r} given twice in {spec!r}")
        given.add(key)
        values[key] = _parse_number(spec, key, text, types[key])
    if sample_rate is not None and "sample_rate" in given and values["sample_rate"] != sample_rate:
        raise ValueError(f"{spec!r} sets sample_rate={values['sample_rate']} but "
                         f"sample_rate={sample_rate} was requested")
    if sample_rate is not None:
        values["sample_rate"] = int(sample_rate)
    check_int("num_items", values["num_items"], 1)
    check_int("sample_rate", values["sample_rate"], 1)
    check_int("seed", values["seed"], 0)
    if not values["item_seconds"] > 0.0:
        raise ValueError(f"item_seconds must be > 0, got {values['item_seconds']!r} in {spec!r}")
    generator = generator_class(values["sample_rate"], **{
        key: values[key] for key in generator_class.PARAMETERS})
    return BuiltinSource(spec, generator_name, generator, num_items=values["num_items"],
                         item_seconds=values["item_seconds"], seed=values["seed"],
                         valid_fraction=valid_fraction, test_fraction=test_fraction)



def _parse_number(spec, key, text, kind):
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"parameter {key} in {spec!r} must be "
                         f"{'an integer' if kind is int else 'a number'}, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"parameter {key} in {spec!r} must be finite, got {text!r}")
    return value
