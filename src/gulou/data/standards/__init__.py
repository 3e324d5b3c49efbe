"""National-standard tables (HJ 633, GB 3095, GB 3838, black-odour guide, building limits) as YAML."""
