"""Inference backends behind one interface; each runtime library is imported inside its own module."""
