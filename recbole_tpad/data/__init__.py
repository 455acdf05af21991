"""Data the models read: the item-feature file contract and locating datasets."""
