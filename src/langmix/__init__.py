"""langmix: controlled studies of multilinguality in LLM post-training.

Stages, in data-flow order: data (synth, loaders) -> mixtures -> train -> evaluate -> results -> report,
with `study` orchestrating a grid of runs on top.
"""

__version__ = "0.1.0"
