"""Where readings are stored: one module per store, listed in ``gulou.sinks.registry``."""
