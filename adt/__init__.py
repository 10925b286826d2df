"""adt: automatic drum transcription, the library behind the Dagster pipeline.

No Dagster imports here: every stage is a plain function over files under the
data folder, so it can be called from a notebook, the CLI or a Dagster asset.
"""

import os
from pathlib import Path

# OpenMP threads that spin while waiting thrash when two processes share 2 cores
# (a 100x slowdown of GRU training was seen); passive waiting avoids it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
#: The weights shipped with the package and their model cards (transcriber, separator, GRU LMs).
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
