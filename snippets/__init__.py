"""Code shared by the DL Notes pages, one concept per module."""
