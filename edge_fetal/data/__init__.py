"""Datasets (HC18, multi-plane biometry CSVs) and the ultrasound simulator; numpy/OpenCV only."""
