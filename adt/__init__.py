"""adt: automatic drum transcription, the library behind the Dagster pipeline.

No Dagster imports here: every stage is a plain function over files under the
data folder, so it can be called from a notebook, the CLI or a Dagster asset.
"""

__version__ = "0.1.0"
