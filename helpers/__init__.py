"""hdnnp-handson helpers: the plumbing behind the notebooks.

Modules (imports point down this list only, see ``docs/ARCHITECTURE.md``):

- :mod:`helpers.config` quick/full mode, seeds, repository URL, environment-variable names
- :mod:`helpers.data` finding the data folder, manifest and checksums, lecture arrays, reading ASE files, splits
- :mod:`helpers.descriptors`, :mod:`helpers.model`, :mod:`helpers.training` descriptors, the HDNNP, training
- :mod:`helpers.metrics`, :mod:`helpers.plots`, :mod:`helpers.calculator` evaluation and use

Importing ``helpers`` itself is cheap (no torch, no dscribe): import the submodule you need.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
