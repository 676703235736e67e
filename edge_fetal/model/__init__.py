"""Multi-task network (segmentation + plane) and its loss; needs the `train` extra (torch)."""
