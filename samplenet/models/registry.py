"""Model families by name: ``register_family`` (a class decorator) and ``family_class``.

Each model module registers its class under a family name (``"samplernn"``, ``"wavenet"``, ...)
when imported; ``family_class`` imports the known family modules (and those named in
``SAMPLENET_EXTRA_FAMILIES``, e.g. test-only families) before looking a name up. The
configuration schema that builds models from presets is ``samplenet.config``.
"""
import importlib
import inspect
import os

FAMILIES = {}

# Modules that register families when imported (kept here so every family is found by name).
_FAMILY_MODULES = (
    "samplenet.models.samplernn",
    "samplenet.models.wavenet",
    "samplenet.models.linear_ar",
    "samplenet.models.soundstream",
)
# Environment variable naming extra family modules to import (comma-separated module names).
EXTRA_FAMILIES_ENV = "SAMPLENET_EXTRA_FAMILIES"


def register_family(name):
    """Class decorator: register a model class under ``name`` and set ``cls.family``."""
    def decorate(cls):
        cls.family = name
        FAMILIES[name] = cls
        return cls
    return decorate


def _extra_family_modules():
    """Modules named in ``SAMPLENET_EXTRA_FAMILIES`` (comma-separated), e.g. test-only families
    that subprocesses started by the tests must know."""
    return tuple(name.strip() for name in os.environ.get(EXTRA_FAMILIES_ENV, "").split(",")
                 if name.strip())


def import_families():
    """Import every family module (registering its classes); ``ValueError`` when a module
    named in ``SAMPLENET_EXTRA_FAMILIES`` cannot be imported."""
    for module in _FAMILY_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:  # a real missing dependency, not a family not yet written
                raise
    for module in _extra_family_modules():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            raise ValueError(f"{EXTRA_FAMILIES_ENV} names {module!r}, which cannot be imported: "
                             f"{error}") from None


def family_class(name):
    """The model class registered as ``name``; ``ValueError`` listing the known ones otherwise."""
    import_families()
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; known: {sorted(FAMILIES)}")
    return FAMILIES[name]


def family_names():
    """Sorted names of every registered family."""
    import_families()
    return sorted(FAMILIES)


def constructor_defaults(cls):
    """``{argument: default}`` of ``cls.__init__`` (``inspect.Parameter.empty`` when required)."""
    params = inspect.signature(cls.__init__).parameters
    return {name: p.default for name, p in params.items()
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
