"""Studies: expand a config into the grid of runs and execute them, skipping finished work."""
