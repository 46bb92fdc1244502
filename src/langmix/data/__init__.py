"""Source data: the embedded synthetic world, and loaders for real datasets."""
