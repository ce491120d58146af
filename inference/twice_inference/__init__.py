"""twice inference worker: runs recurrent language models on recall tasks for the orchestrator.

Entry point: ``python -m twice_inference.worker``. Tests: ``pytest`` in ``inference/``.
"""

__version__ = "0.1.0"
