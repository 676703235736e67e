"""Multi-task network (segmentation + plane) and its loss; needs the `train` extra (torch)."""

# How the soft Dice loss pools (model/loss.py); here, free of torch, so the training config can
# check the name without importing torch.
DICE_POOLING = ("batch", "image", "both")
