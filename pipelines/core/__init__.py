"""Domain code every stage imports: palette, tiling, images, TFRecord schema, storage URIs.

Training and inference must agree on these facts, so each lives here exactly once.
"""
