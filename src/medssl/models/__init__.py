"""Encoders, segmentation network, BYOL heads and weight import."""
