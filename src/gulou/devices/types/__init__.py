"""Device types, one module each; ``gulou.devices.catalog`` lists them explicitly."""
