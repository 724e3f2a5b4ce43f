"""Certificate profiles for the authority's own certificates (root, intermediate)."""
