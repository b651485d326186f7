"""samplenet.models.registry: model families by name."""
import pytest

from samplenet.models import registry
from samplenet.models.samplernn import SampleRNN


def test_family_class_finds_every_shipped_family():
    assert {"samplernn", "wavenet", "linear_ar", "soundstream"} <= set(registry.family_names())
    assert registry.family_class("samplernn") is SampleRNN and SampleRNN.family == "samplernn"


def test_unknown_family_raises_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model family 'rnn'; known: .*'samplernn'"):
        registry.family_class("rnn")


def test_extra_family_module_that_does_not_import_raises_naming_it(monkeypatch):
    monkeypatch.setenv(registry.EXTRA_FAMILIES_ENV, "samplenet.testing.no_such_family")
    with pytest.raises(ValueError, match="names 'samplenet.testing.no_such_family'"):
        registry.family_class("samplernn")


def test_extra_family_modules_register_their_families(monkeypatch):
    monkeypatch.setenv(registry.EXTRA_FAMILIES_ENV, " samplenet.testing.toy_model , ")
    assert registry.family_class("toy_ar").family == "toy_ar"
