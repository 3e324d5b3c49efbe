"""The rules engine: rule files, pure evaluation, alert lifecycle, delivery and the rules service."""
