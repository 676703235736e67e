"""edge-fetal: real-time fetal biometry (HC, BPD, OFD, AC, FL) from live ultrasound video."""

__version__ = "0.1.0"
