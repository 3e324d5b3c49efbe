"""Message sources the collector reads from: one module per transport, listed in ``gulou.sources.registry``."""
