"""crossrank: neural passage re-ranking with cross-encoders."""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["CrossEncoder", "WindowConfig", "__version__"]


def __getattr__(name: str):
    # CrossEncoder pulls in torch; data/ and evaluation/ stay importable without it.
    if name == "CrossEncoder":
        from crossrank.model import CrossEncoder

        return CrossEncoder
    if name == "WindowConfig":
        from crossrank.model.windows import WindowConfig

        return WindowConfig
    raise AttributeError(f"module 'crossrank' has no attribute {name!r}")
