"""The model classes, re-exported from ``mlpipeline_model`` (the code logged with each model).

Models pickled before the classes moved name them ``runs.models.*`` (or ``common.models.*``,
see ``runs.tracking``); these names keep them loading.
"""

from mlpipeline_model import MODEL_NAMES, Ensemble, ImageClassifier, SmallCNN, build_model

__all__ = ["MODEL_NAMES", "Ensemble", "ImageClassifier", "SmallCNN", "build_model"]
