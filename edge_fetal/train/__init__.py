"""Training: config, augmentations, in-memory dataset, the loop; needs the `train` extra."""
