"""The application layer: the runners every command calls (broker, pipeline, rules service, simulator, demo)."""
