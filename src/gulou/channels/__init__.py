"""Alert channels: one module per channel behind the ``Channel`` boundary, listed in ``registry.CHANNELS``."""
