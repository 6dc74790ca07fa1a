"""Data layer: readers, phantom, validation, preprocessing cache, splits, datasets."""
