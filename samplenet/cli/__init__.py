"""Command-line programs (absl apps): ``train``, ``generate``, ``evaluate``.

Each module defines its flags in ``define_flags()`` and runs with ``run()``; the work itself is
done by the library (``samplenet.training``, ``samplenet.loading``). Errors the user can fix are
printed as one ``error: ...`` line on stderr with a non-zero exit code.
"""
