"""The synthetic inbox generator (generator/) and its isolation from the pipeline runtime."""
