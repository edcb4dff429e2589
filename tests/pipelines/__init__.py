"""The pipeline shell and core: CLI, config, keys, secrets, sensors, runner, Definitions, warehouse, deploy, UI."""
