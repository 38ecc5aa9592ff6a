"""Plug-ins for implementations pydsbase did not write (docs/CONFORMANCE.md). Each imports its package
only when called; install them with ``pip install 'pydsbase[conformance]'``.

- ``pydsbase.conformance.adapters.pypi_mixedlm``: PyPI ``mixedlm`` (a Python port of lme4's lmer);
- ``pydsbase.conformance.adapters.mixedlm_rs``: PyPI ``mixedlm-rs`` (statsmodels' MixedLM API, in Rust);
- ``pydsbase.conformance.adapters.statsmodels_mixedlm``: statsmodels ``MixedLM``, pooled by pydsbase's
  metafor port; ``...statsmodels_mixedlm:WITH_PYMARE``: the same fits pooled by PyMARE.
"""
