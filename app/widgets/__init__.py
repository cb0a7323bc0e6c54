"""Reusable widgets: charts, image grids, forms."""
