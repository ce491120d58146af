"""Model adapters, one module per family, behind the ``LanguageModel`` protocol, and the registry
that builds them from the model catalog (``inference/catalog/models.json``).
Tests: ``tests/test_models_*.py``, ``tests/test_registry.py``.
"""

from .registry import LoadedModel, ModelInfo, load_catalog, load_model

__all__ = ["LoadedModel", "ModelInfo", "load_catalog", "load_model"]
