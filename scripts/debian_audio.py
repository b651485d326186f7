#!/usr/bin/env python3
"""Build real-audio corpora from free Debian packages: an explicit build step run by the user.

The benchmarks and shipped models train and evaluate on real audio that comes from packages in
Debian main (so its licence is free), built by this script, never committed as audio and never
downloaded by the library at run time. A corpus is a list of packages and, for each, which of
its files are the audio to keep. Building one downloads the packages' .deb files with
``apt-get download`` into a cache (a cached .deb is not downloaded again), extracts them with
``dpkg-deb``, decodes every audio file to mono at one sample rate, and writes

  OUT/<package>/<path inside the package, "/" replaced by "__", extension .wav>  (16-bit WAV)
  OUT/manifest.json   corpus, command line, packages (version, licence) and, per file, its
                      package, version, path in the package, the source file's sha256, its
                      duration in seconds and sample rate; plus the files that could not be read

Files are written atomically and a rebuild skips the ones already there, so a killed build
continues where it stopped. Files shorter than ``--min-seconds`` (sound effects, jingles) and
duplicates of a file already kept are left out and counted; undecodable files are listed and
skipped.

Corpora whose name ends in ``-eval`` are reserved for independent evaluation. Their sources
(the ``wesnoth-*`` packages and ``festvox-kallpc16k``) are refused by every training corpus,
also when named with ``--packages``.

  python scripts/debian_audio.py music --out /work/data/music16k
  python scripts/debian_audio.py music-eval --out /work/data/music16k-eval
  python scripts/debian_audio.py music --out /tmp/music-small --max-files 10 \\
      --max-seconds-per-file 30
"""
import argparse
import dataclasses
import fnmatch
import hashlib
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path, PurePosixPath

import samplenet.audio

AUDIO_SUFFIXES = frozenset({".ogg", ".flac", ".wav", ".mp3"})
RESERVED_PACKAGES = ("wesnoth-*", "festvox-kallpc16k")  # fnmatch patterns of package names
EVALUATION_SUFFIX = "-eval"
DEFAULT_CACHE = "~/.cache/samplenet/debian"
DEFAULT_SAMPLE_RATE = 16000
DEFAULT_MIN_SECONDS = 20.0
PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")  # Debian policy 5.6.1
SECONDS_PER_HOUR = 3600.0


class CorpusError(Exception):
    """A build that cannot go on; the message names the culprit (package, file or option)."""


@dataclasses.dataclass(frozen=True)
class PackageSource:
    """A Debian package and which of its files are the audio to keep.

    ``audio_globs`` are ``fnmatch`` patterns on the path inside the package (``*`` also crosses
    ``/``); regular files with an audio suffix (``AUDIO_SUFFIXES``) that match one are used.
    ``licence`` is the licence of those files, from the package's copyright file.
    """
    package: str
    audio_globs: tuple
    licence: str


MUSIC_SOURCES = (
    PackageSource("colobot-common-sounds", ("usr/share/games/colobot/music/*",), "GPL-3+"),
    PackageSource("drascula-music", ("usr/share/scummvm/drascula/audio/*",),
                  "Drascula licence (BSD-like, DFSG-free)"),
    PackageSource("fillets-ng-data", ("usr/share/games/fillets-ng/music/*",), "GPL-2"),
    PackageSource("fretsonfire-songs-muldjord", ("usr/share/games/fretsonfire/data/songs/*",),
                  "CC-BY-SA-3.0"),
    PackageSource("fretsonfire-songs-sectoid", ("usr/share/games/fretsonfire/data/songs/*",),
                  "Expat"),
    PackageSource("hyperrogue-music", ("usr/share/hyperrogue/music/*",), "CC-BY-SA-3.0"),
    PackageSource("planetblupi-music-ogg", ("usr/share/planetblupi/music/*",), "GPL-3+"),
    PackageSource("pushover-data", ("usr/share/pushover/themes/*",), "GPL-3+"),
    PackageSource("singularity-music", ("usr/share/games/singularity/music/*",),
                  "CC-BY-SA-3.0"),
)

CORPORA = {
    "music": MUSIC_SOURCES,
    "music-eval": (
        PackageSource("wesnoth-1.16-music", ("usr/share/games/wesnoth/*/data/core/music/*",),
                      "GPL-2+"),
    ),
    # "speech" (a later issue): festival voices (festvox-* packages) synthesise text to WAV
    # instead of shipping audio files. Its held-out voice, festvox-kallpc16k, is already in
    # RESERVED_PACKAGES, for a "speech-eval" corpus.
}


@dataclasses.dataclass(frozen=True)
class ExtractedPackage:
    """A package's .deb extracted into ``root``, with its Debian ``version``."""
    source: PackageSource
    version: str
    root: Path


@dataclasses.dataclass(frozen=True)
class AudioFile:
    """One audio file found in an extracted package.

    ``path`` is its POSIX path inside the package, ``source`` the extracted file, ``sha256``
    the hex digest of its bytes, ``seconds`` its duration from the file's header.
    """
    package: str
    version: str
    path: str
    source: Path
    sha256: str
    seconds: float

    @property
    def output_name(self):
        """``<package>/<path with "/" replaced by "__" and extension .wav>``."""
        flat_name = str(PurePosixPath(self.path).with_suffix(".wav")).replace("/", "__")
        return f"{self.package}/{flat_name}"

    @property
    def selection_key(self):
        """The sha256 of ``<package>/<path>``: a stable order that ignores names' meaning."""
        return hashlib.sha256(f"{self.package}/{self.path}".encode()).hexdigest()


@dataclasses.dataclass
class PackageReport:
    """What a build did with one package's audio files (``seconds`` as written)."""
    package: str
    version: str
    written: int = 0
    already_there: int = 0
    too_short: int = 0
    duplicates: int = 0
    not_selected: int = 0
    bad: list = dataclasses.field(default_factory=list)  # (path in package, reason)
    seconds: float = 0.0

    def line(self):
        """One summary line: files, hours and what was left out."""
        files = self.written + self.already_there
        return (f"{self.package} {self.version}: {files} files, "
                f"{self.seconds / SECONDS_PER_HOUR:.2f} h ({self.written} written, "
                f"{self.already_there} already there; left out: {self.too_short} too short, "
                f"{self.duplicates} duplicates, {self.not_selected} beyond --max-files, "
                f"{len(self.bad)} bad)")


def is_evaluation_corpus(corpus):
    """True for corpora reserved for independent evaluation (names ending in ``-eval``)."""
    return corpus.endswith(EVALUATION_SUFFIX)


def is_reserved(package):
    """True for the packages kept out of every training corpus (``RESERVED_PACKAGES``)."""
    return any(fnmatch.fnmatchcase(package, pattern) for pattern in RESERVED_PACKAGES)


def resolve_sources(corpus, packages=None):
    """The package sources to build ``corpus`` from.

    Args:
      corpus: a name in ``CORPORA``.
      packages: package names to use instead of the corpus's own, or None. A package that
        some corpus lists keeps its audio globs and licence; any other uses every audio file
        it holds.
    Returns:
      a tuple of ``PackageSource``.
    Raises:
      CorpusError: unknown corpus, a name that is not a Debian package name, or a reserved
        package in a training corpus (one not ending in ``-eval``).
    """
    if corpus not in CORPORA:
        raise CorpusError(f"unknown corpus {corpus!r}; known corpora: {', '.join(CORPORA)}")
    if packages is None:
        sources = CORPORA[corpus]
    else:
        known = {source.package: source for sources in CORPORA.values() for source in sources}
        for package in packages:
            if not PACKAGE_NAME.fullmatch(package):
                raise CorpusError(f"--packages: {package!r} is not a Debian package name")
        sources = tuple(known.get(package) or PackageSource(
            package, ("*",), f"see /usr/share/doc/{package}/copyright")
            for package in dict.fromkeys(packages))
    if not is_evaluation_corpus(corpus):
        for source in sources:
            if is_reserved(source.package):
                raise CorpusError(
                    f"package {source.package!r} is reserved for independent evaluation "
                    f"(reserved: {', '.join(RESERVED_PACKAGES)}); the training corpus "
                    f"{corpus!r} cannot use it, only a corpus whose name ends in "
                    f"{EVALUATION_SUFFIX!r}")
    return sources


def run_tool(command, cwd=None):
    """Run ``command`` (a list) and return its stdout; CorpusError naming the command and its
    error output if it is missing or fails."""
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise CorpusError(f"{command[0]}: not found (this script needs Debian's apt and "
                          "dpkg)") from None
    if result.returncode != 0:
        raise CorpusError(f"{shlex.join(command)} failed: {result.stderr.strip()}")
    return result.stdout


def check_in_main(package):
    """CorpusError unless apt knows ``package`` and takes it from Debian main (free software)."""
    fields = run_tool(["apt-cache", "show", "--no-all-versions", package])
    filenames = [line.split(":", 1)[1].strip() for line in fields.splitlines()
                 if line.startswith("Filename:")]
    if not filenames or not filenames[0].startswith("pool/main/"):
        raise CorpusError(f"package {package!r} is not in Debian main (archive file "
                          f"{filenames[0] if filenames else 'unknown'}), so its licence is "
                          "not known to be free")


def cached_deb(package, cache_dir):
    """The newest (by modification time) ``<package>_*.deb`` in ``cache_dir``, or None."""
    debs = sorted(Path(cache_dir).glob(f"{package}_*.deb"), key=lambda deb: deb.stat().st_mtime)
    return debs[-1] if debs else None


def download_deb(package, cache_dir):
    """The path of ``package``'s .deb in ``cache_dir``: the cached one, else downloaded with
    ``apt-get download`` (into a temporary folder, then moved, so the cache never holds half a
    file). Refuses packages outside Debian main."""
    deb = cached_deb(package, cache_dir)
    if deb is not None:
        return deb
    check_in_main(package)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as folder:
        run_tool(["apt-get", "download", package], cwd=folder)
        (downloaded,) = Path(folder).glob("*.deb")
        deb = Path(cache_dir) / downloaded.name
        os.replace(downloaded, deb)
    print(f"downloaded {deb.name} ({deb.stat().st_size / 1e6:.0f} MB)", flush=True)
    return deb


def fetch_package(source, cache_dir, scratch_dir):
    """Download (or take from the cache) and extract ``source``'s package under
    ``scratch_dir``: an ``ExtractedPackage``."""
    deb = download_deb(source.package, cache_dir)
    version = run_tool(["dpkg-deb", "--field", str(deb), "Version"]).strip()
    root = Path(scratch_dir) / source.package
    run_tool(["dpkg-deb", "--extract", str(deb), str(root)])
    return ExtractedPackage(source, version, root)


def find_audio_paths(root, audio_globs):
    """Sorted POSIX paths, relative to ``root``, of the regular files (not symbolic links) with
    an audio suffix that match one of ``audio_globs``."""
    paths = []
    for folder, _, names in os.walk(root):
        for name in names:
            file = Path(folder) / name
            relative = file.relative_to(root).as_posix()
            if (file.suffix.lower() in AUDIO_SUFFIXES and not file.is_symlink()
                    and any(fnmatch.fnmatchcase(relative, pattern) for pattern in audio_globs)):
                paths.append(relative)
    return sorted(paths)


def file_sha256(path):
    """Hex sha256 of the bytes of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scan_package(extracted, report):
    """The ``AudioFile``s of an extracted package (sorted by path); files whose header cannot
    be read are added to ``report.bad``."""
    files = []
    for path in find_audio_paths(extracted.root, extracted.source.audio_globs):
        source = extracted.root / path
        try:
            seconds = samplenet.audio.info(source).seconds
        except samplenet.audio.AudioError as error:
            report.bad.append((path, str(error)))
            continue
        files.append(AudioFile(extracted.source.package, extracted.version, path, source,
                               file_sha256(source), seconds))
    return files


def drop_short_and_duplicates(files, min_seconds, reports):
    """``files`` without those shorter than ``min_seconds`` and those whose content (sha256) or
    output name repeats an earlier one; each dropped file is counted in its package's report."""
    kept, seen = [], set()
    for file in files:
        if file.seconds < min_seconds:
            reports[file.package].too_short += 1
        elif file.sha256 in seen or file.output_name in seen:
            reports[file.package].duplicates += 1
        else:
            seen.update((file.sha256, file.output_name))
            kept.append(file)
    return kept


def select_spread(files, max_files):
    """Up to ``max_files`` of ``files``, taken round-robin over packages (sorted by name), each
    package's files in ``selection_key`` order, so that a few files come from many packages
    and the choice does not depend on the machine. All files when ``max_files`` is None."""
    by_package = {}
    for file in sorted(files, key=lambda file: (file.package, file.selection_key)):
        by_package.setdefault(file.package, []).append(file)
    spread = [file for rank in itertools.zip_longest(*by_package.values())
              for file in rank if file is not None]
    return spread if max_files is None else spread[:max_files]


def write_wav(file, out_dir, sample_rate, max_seconds_per_file):
    """Decode ``file`` to mono at ``sample_rate`` Hz, cut it to its first
    ``max_seconds_per_file`` seconds (None: whole file) and write it to
    ``out_dir/file.output_name`` atomically. Returns the seconds written. Raises AudioError if
    it cannot be decoded or written."""
    audio = samplenet.audio.load(file.source, sample_rate=sample_rate)
    if max_seconds_per_file is not None:
        audio = audio[:int(round(max_seconds_per_file * sample_rate))]
    samplenet.audio.save(Path(out_dir) / file.output_name, audio, sample_rate)
    return len(audio) / sample_rate


def existing_wav_seconds(path, sample_rate):
    """Duration in seconds of a WAV an earlier build wrote at ``path``, or None if there is
    none. CorpusError if it has another sample rate (the build would mix rates)."""
    if not path.exists():
        return None
    try:
        header = samplenet.audio.info(path)
    except samplenet.audio.AudioError as error:
        raise CorpusError(f"{error}; delete it to build it again") from None
    if header.sample_rate != sample_rate:
        raise CorpusError(f"{path}: was built at {header.sample_rate} Hz, not {sample_rate} Hz; "
                          "use another --out folder")
    return header.seconds


def write_json_atomically(path, data):
    """Write ``data`` as indented JSON to ``path`` through a temporary file and a rename."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        temporary.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_package_files(files, report, out_dir, sample_rate, max_seconds_per_file):
    """Write one package's selected ``files`` (``write_wav``) unless an earlier build did, and
    count them in ``report``; undecodable files go to ``report.bad``. Returns their manifest
    entries, sorted by path."""
    entries = []
    for file in sorted(files, key=lambda file: file.path):
        seconds = existing_wav_seconds(out_dir / file.output_name, sample_rate)
        if seconds is not None:
            report.already_there += 1
        else:
            try:
                seconds = write_wav(file, out_dir, sample_rate, max_seconds_per_file)
            except samplenet.audio.AudioError as error:
                report.bad.append((file.path, str(error)))
                continue
            report.written += 1
        report.seconds += seconds
        entries.append({"file": file.output_name, "package": file.package,
                        "version": file.version, "path": file.path, "sha256": file.sha256,
                        "seconds": round(seconds, 3), "sample_rate": sample_rate})
    return entries


def build_corpus(corpus, packages, out_dir, *, command, sample_rate=DEFAULT_SAMPLE_RATE,
                 min_seconds=DEFAULT_MIN_SECONDS, max_files=None, max_seconds_per_file=None):
    """Write the audio of extracted ``packages`` and ``manifest.json`` into ``out_dir``.

    Prints one summary line per package and a total line; files that cannot be read are listed
    and skipped. WAVs already in ``out_dir`` are kept, not decoded again.

    Args:
      corpus: the corpus name recorded in the manifest.
      packages: ``ExtractedPackage``s.
      out_dir: output folder (created).
      command: the command line recorded in the manifest.
      sample_rate: Hz of the written WAVs.
      min_seconds: files shorter than this (from their header) are left out.
      max_files: keep at most this many files (``select_spread``), or None for all.
      max_seconds_per_file: write only the first seconds of each file, or None.
    Returns:
      the manifest, a dict.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reports = {package.source.package: PackageReport(package.source.package, package.version)
               for package in packages}
    found = [file for package in packages
             for file in scan_package(package, reports[package.source.package])]
    candidates = drop_short_and_duplicates(found, min_seconds, reports)
    selected = select_spread(candidates, max_files)
    for file in set(candidates) - set(selected):
        reports[file.package].not_selected += 1
    entries = []
    for package in packages:
        report = reports[package.source.package]
        package_files = [file for file in selected if file.package == report.package]
        entries += write_package_files(package_files, report, out_dir, sample_rate,
                                       max_seconds_per_file)
        print(report.line(), flush=True)
        for path, reason in report.bad:
            print(f"  bad: {report.package}/{path}: {reason}", flush=True)
    manifest = {
        "corpus": corpus,
        "command": command,
        "sample_rate": sample_rate,
        "packages": {package.source.package: {"version": package.version,
                                              "licence": package.source.licence}
                     for package in packages},
        "files": entries,
        "bad": [{"package": report.package, "path": path, "reason": reason}
                for report in reports.values() for path, reason in report.bad],
    }
    write_json_atomically(out_dir / "manifest.json", manifest)
    total_seconds = sum(report.seconds for report in reports.values())
    print(f"total: {len(entries)} files, {total_seconds / SECONDS_PER_HOUR:.2f} h from "
          f"{len(packages)} packages -> {out_dir}", flush=True)
    return manifest


def positive_int(text):
    """An argparse type: an int > 0."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {text!r}")
    return value


def positive_float(text):
    """An argparse type: a float > 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def non_negative_float(text):
    """An argparse type: a float >= 0."""
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def parse_args(argv=None):
    """The command line as an ``argparse.Namespace``."""
    parser = argparse.ArgumentParser(
        description="Build a real-audio corpus from free Debian packages.",
        epilog=" ".join(f"{name}: {', '.join(source.package for source in sources)}."
                        for name, sources in CORPORA.items()))
    parser.add_argument("corpus", choices=list(CORPORA), help="the corpus to build")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--cache", type=Path, default=Path(DEFAULT_CACHE).expanduser(),
                        help=f"folder for the downloaded .deb files (default {DEFAULT_CACHE})")
    parser.add_argument("--packages", nargs="+", metavar="PACKAGE",
                        help="build from these packages instead of the corpus's own")
    parser.add_argument("--sample-rate", type=positive_int, default=DEFAULT_SAMPLE_RATE,
                        help="Hz of the written WAVs (default %(default)s)")
    parser.add_argument("--min-seconds", type=non_negative_float, default=DEFAULT_MIN_SECONDS,
                        help="leave out files shorter than this (default %(default)s)")
    parser.add_argument("--max-files", type=positive_int,
                        help="keep this many files, spread over the packages")
    parser.add_argument("--max-seconds-per-file", type=positive_float,
                        help="write only the first seconds of each file")
    return parser.parse_args(argv)


def main(argv=None):
    """Build the corpus the command line names; exit with one error line if it cannot."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    started = time.monotonic()
    try:
        sources = resolve_sources(args.corpus, args.packages)
        args.cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=args.cache, prefix=".extract-") as scratch:
            packages = [fetch_package(source, args.cache, scratch) for source in sources]
            build_corpus(args.corpus, packages, args.out,
                         command=shlex.join(["python", "scripts/debian_audio.py", *argv]),
                         sample_rate=args.sample_rate, min_seconds=args.min_seconds,
                         max_files=args.max_files,
                         max_seconds_per_file=args.max_seconds_per_file)
    except CorpusError as error:
        sys.exit(f"debian_audio.py: error: {error}")
    print(f"took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
