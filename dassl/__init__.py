"""Our own engine, API-compatible with Dassl.pytorch v0.6.3 (KaiyangZhou/Dassl.pytorch@c61a1b5)."""
__version__ = "0.6.3"
