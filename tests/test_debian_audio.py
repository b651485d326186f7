"""scripts/debian_audio.py on fake extracted packages: no network, no apt, no dpkg."""
import hashlib
import importlib.util
import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "debian_audio.py"
RATE = 16000
MUSIC_GLOB = ("usr/share/*/music/*",)


def _load_script():
    spec = importlib.util.spec_from_file_location("debian_audio", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


debian_audio = _load_script()


def _write_tone(path, seconds, frequency=440.0, channels=1):
    """A sine of ``seconds`` at RATE Hz (OGG/Vorbis for .ogg, 16-bit WAV otherwise)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * RATE)) / RATE
    tone = 0.5 * np.sin(2 * np.pi * frequency * t).astype(np.float32)
    data = np.stack([tone] * channels, axis=1)
    kwargs = {"format": "OGG", "subtype": "VORBIS"} if path.suffix == ".ogg" else {}
    sf.write(str(path), data, RATE, **kwargs)
    return path


def _package(tmp_path, name, files, version="1.0-1", audio_globs=MUSIC_GLOB):
    """An ExtractedPackage under tmp_path/extracted/name holding ``files``: {path: seconds}."""
    root = tmp_path / "extracted" / name
    for index, (path, seconds) in enumerate(sorted(files.items())):
        _write_tone(root / path, seconds, frequency=200.0 + 50 * index + sum(map(ord, name)) % 97)
    return debian_audio.ExtractedPackage(
        debian_audio.PackageSource(name, audio_globs, "GPL-2+"), version, root)


def _build(packages, out, **kwargs):
    return debian_audio.build_corpus("music", packages, out, command="test", **kwargs)


def _audio_file(package, index):
    return debian_audio.AudioFile(package, "1", f"usr/share/{package}/music/{index}.ogg",
                                  Path("unused"), f"{package}-{index}", 60.0)


@pytest.mark.parametrize("packages", [
    ["wesnoth-1.16-music"],
    ["wesnoth-music"],
    ["wesnoth-1.18-music"],
    ["festvox-kallpc16k"],
    ["hyperrogue-music", "wesnoth-1.16-music"],
])
def test_resolve_sources_reserved_package_for_training_raises_naming_it(packages):
    with pytest.raises(debian_audio.CorpusError, match=f"'{packages[-1]}' is reserved"):
        debian_audio.resolve_sources("music", packages)


def test_resolve_sources_reserved_package_in_corpus_definition_raises(monkeypatch):
    reserved = debian_audio.CORPORA["music-eval"][0]
    monkeypatch.setitem(debian_audio.CORPORA, "music",
                        debian_audio.MUSIC_SOURCES + (reserved,))
    with pytest.raises(debian_audio.CorpusError, match="'wesnoth-1.16-music' is reserved"):
        debian_audio.resolve_sources("music")


def test_main_reserved_package_exits_before_any_download(monkeypatch, tmp_path):
    def no_subprocess(*args, **kwargs):
        raise AssertionError("apt or dpkg was called")
    monkeypatch.setattr(debian_audio.subprocess, "run", no_subprocess)
    with pytest.raises(SystemExit) as exit_info:
        debian_audio.main(["music", "--packages", "wesnoth-1.16-music", "--out",
                           str(tmp_path / "out"), "--cache", str(tmp_path / "cache")])
    assert "'wesnoth-1.16-music' is reserved" in str(exit_info.value.code)
    assert not (tmp_path / "out").exists()


def test_resolve_sources_reserved_packages_for_evaluation_accepted():
    assert [source.package for source in debian_audio.resolve_sources("music-eval")] == [
        "wesnoth-1.16-music"]
    sources = debian_audio.resolve_sources("music-eval", ["festvox-kallpc16k"])
    assert [source.package for source in sources] == ["festvox-kallpc16k"]


def test_resolve_sources_known_package_keeps_its_globs_and_unknown_takes_all_audio():
    known, unknown = debian_audio.resolve_sources("music", ["hyperrogue-music", "some-game"])
    assert known.audio_globs == ("usr/share/hyperrogue/music/*",)
    assert unknown.audio_globs == ("*",)


@pytest.mark.parametrize("name", ["-o", "Game Music", "a"])
def test_resolve_sources_not_a_package_name_raises(name):
    with pytest.raises(debian_audio.CorpusError, match="not a Debian package name"):
        debian_audio.resolve_sources("music", [name])


def test_find_audio_paths_keeps_matching_audio_and_skips_links_and_others(tmp_path):
    root = tmp_path / "pkg"
    _write_tone(root / "usr/share/game/music/a.ogg", 0.1)
    _write_tone(root / "usr/share/game/music/sub/b.WAV", 0.1)
    _write_tone(root / "usr/share/game/sounds/c.ogg", 0.1)
    (root / "usr/share/game/music/notes.txt").write_text("not audio")
    (root / "usr/share/game/music/link.ogg").symlink_to(root / "usr/share/game/music/a.ogg")
    assert debian_audio.find_audio_paths(root, MUSIC_GLOB) == [
        "usr/share/game/music/a.ogg", "usr/share/game/music/sub/b.WAV"]


def test_build_corpus_output_names_and_manifest_describe_each_file(tmp_path):
    package = _package(tmp_path, "game-music", {})
    source = _write_tone(package.root / "usr/share/game/music/theme one.ogg", 1.5, channels=2)
    manifest = debian_audio.build_corpus("music", [package], tmp_path / "out",
                                         command="python scripts/debian_audio.py music",
                                         sample_rate=8000, min_seconds=1.0)
    written = tmp_path / "out/game-music/usr__share__game__music__theme one.wav"
    header = sf.info(str(written))
    assert (header.samplerate, header.channels, header.subtype) == (8000, 1, "PCM_16")
    assert header.duration == pytest.approx(1.5, abs=0.01)
    assert json.loads((tmp_path / "out/manifest.json").read_text()) == manifest
    assert manifest["corpus"] == "music"
    assert manifest["command"] == "python scripts/debian_audio.py music"
    assert manifest["packages"] == {"game-music": {"version": "1.0-1", "licence": "GPL-2+"}}
    [entry] = manifest["files"]
    assert entry == {"file": "game-music/usr__share__game__music__theme one.wav",
                     "package": "game-music", "version": "1.0-1",
                     "path": "usr/share/game/music/theme one.ogg",
                     "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
                     "seconds": pytest.approx(1.5, abs=0.01), "sample_rate": 8000}


def test_build_corpus_short_files_left_out_and_counted(tmp_path, capsys):
    package = _package(tmp_path, "game-music", {"usr/share/game/music/long.ogg": 1.2,
                                                "usr/share/game/music/jingle.wav": 0.4})
    manifest = _build([package], tmp_path / "out", min_seconds=1.0)
    assert [entry["path"] for entry in manifest["files"]] == ["usr/share/game/music/long.ogg"]
    assert not (tmp_path / "out/game-music/usr__share__game__music__jingle.wav").exists()
    assert "1 too short" in capsys.readouterr().out


def test_build_corpus_same_content_twice_kept_once(tmp_path, capsys):
    package = _package(tmp_path, "game-music", {"usr/share/game/music/en/track1.ogg": 0.5})
    copy = package.root / "usr/share/game/music/fr/track1.ogg"
    copy.parent.mkdir()
    copy.write_bytes((package.root / "usr/share/game/music/en/track1.ogg").read_bytes())
    manifest = _build([package], tmp_path / "out", min_seconds=0.1)
    assert [entry["path"] for entry in manifest["files"]] == [
        "usr/share/game/music/en/track1.ogg"]
    assert "1 duplicates" in capsys.readouterr().out


def test_build_corpus_max_seconds_per_file_cuts_each_file(tmp_path):
    package = _package(tmp_path, "game-music", {"usr/share/game/music/a.ogg": 2.0})
    manifest = _build([package], tmp_path / "out", min_seconds=1.0, max_seconds_per_file=0.5)
    assert manifest["files"][0]["seconds"] == 0.5
    assert sf.info(str(tmp_path / "out" / manifest["files"][0]["file"])).frames == 8000


def test_select_spread_max_files_is_deterministic_and_spread_over_packages():
    files = [_audio_file(package, index) for package in ("a-music", "b-music", "c-music")
             for index in range(10)]
    chosen = debian_audio.select_spread(files, 7)
    shuffled = files[:]
    random.Random(0).shuffle(shuffled)
    assert debian_audio.select_spread(shuffled, 7) == chosen
    assert [file.package for file in chosen] == ["a-music", "b-music", "c-music"] * 2 + [
        "a-music"]
    first_of_a = min((file for file in files if file.package == "a-music"),
                     key=lambda file: file.selection_key)
    assert chosen[0] == first_of_a
    assert debian_audio.select_spread(files, None) == debian_audio.select_spread(shuffled, None)


def test_build_corpus_max_files_takes_one_file_from_each_package(tmp_path, capsys):
    packages = [_package(tmp_path, name, {f"usr/share/{name}/music/{index}.ogg": 0.3
                                          for index in range(3)})
                for name in ("a-music", "b-music", "c-music")]
    manifest = _build(packages, tmp_path / "out", min_seconds=0.1, max_files=3)
    assert sorted(entry["package"] for entry in manifest["files"]) == [
        "a-music", "b-music", "c-music"]
    assert capsys.readouterr().out.count("2 beyond --max-files") == 3


def test_build_corpus_rebuild_skips_files_already_written(tmp_path, capsys):
    package = _package(tmp_path, "game-music", {"usr/share/game/music/a.ogg": 0.5,
                                                "usr/share/game/music/b.ogg": 0.5})
    first = _build([package], tmp_path / "out", min_seconds=0.1)
    kept = tmp_path / "out" / first["files"][0]["file"]
    kept_mtime = kept.stat().st_mtime_ns
    (tmp_path / "out" / first["files"][1]["file"]).unlink()  # as if killed before this file
    capsys.readouterr()
    second = _build([package], tmp_path / "out", min_seconds=0.1)
    assert "1 written, 1 already there" in capsys.readouterr().out
    assert kept.stat().st_mtime_ns == kept_mtime
    assert second == first


def test_build_corpus_existing_file_at_another_rate_raises_naming_it(tmp_path):
    package = _package(tmp_path, "game-music", {"usr/share/game/music/a.ogg": 0.5})
    _build([package], tmp_path / "out", min_seconds=0.1, sample_rate=8000)
    with pytest.raises(debian_audio.CorpusError, match="a.wav: was built at 8000 Hz"):
        _build([package], tmp_path / "out", min_seconds=0.1, sample_rate=16000)


def test_build_corpus_corrupt_audio_listed_and_skipped(tmp_path, capsys):
    package = _package(tmp_path, "game-music", {"usr/share/game/music/good.ogg": 0.5})
    (package.root / "usr/share/game/music/broken.ogg").write_bytes(b"OggS but not really")
    manifest = _build([package], tmp_path / "out", min_seconds=0.1)
    assert [entry["path"] for entry in manifest["files"]] == ["usr/share/game/music/good.ogg"]
    [bad] = manifest["bad"]
    assert (bad["package"], bad["path"]) == ("game-music", "usr/share/game/music/broken.ogg")
    assert "bad: game-music/usr/share/game/music/broken.ogg" in capsys.readouterr().out


def test_build_corpus_undecodable_after_header_listed_and_skipped(tmp_path, monkeypatch):
    package = _package(tmp_path, "game-music", {"usr/share/game/music/a.ogg": 0.5,
                                                "usr/share/game/music/b.ogg": 0.5})
    load = debian_audio.samplenet.audio.load

    def fail_on_b(path, **kwargs):
        if Path(path).name == "b.ogg":
            raise debian_audio.samplenet.audio.AudioError(f"{path}: truncated")
        return load(path, **kwargs)
    monkeypatch.setattr(debian_audio.samplenet.audio, "load", fail_on_b)
    manifest = _build([package], tmp_path / "out", min_seconds=0.1)
    assert [entry["path"] for entry in manifest["files"]] == ["usr/share/game/music/a.ogg"]
    assert manifest["bad"][0]["reason"].endswith("b.ogg: truncated")


def test_download_deb_cached_deb_not_downloaded_again(tmp_path, monkeypatch):
    def no_subprocess(*args, **kwargs):
        raise AssertionError("apt was called")
    monkeypatch.setattr(debian_audio.subprocess, "run", no_subprocess)
    cached = tmp_path / "hyperrogue-music_12.0q-1_all.deb"
    cached.write_bytes(b"a deb")
    (tmp_path / "hyperrogue_12.0q-1_amd64.deb").write_bytes(b"another package")
    assert debian_audio.download_deb("hyperrogue-music", tmp_path) == cached
