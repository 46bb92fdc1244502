"""langmix: controlled studies of multilinguality in LLM post-training.

Stages, in data-flow order: data (synth, loaders) -> mixtures -> train -> evaluate -> results -> report,
with `study` orchestrating a grid of runs on top.
"""

from langmix import imported_source

imported_source.install()  # before any other langmix module: their source as imported (the scorer digest)

__version__ = "0.1.0"
