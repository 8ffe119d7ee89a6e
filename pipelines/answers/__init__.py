"""Answers from a class map, shared by the stage jobs and the commands that rework outputs.

Class areas (:mod:`areas`, :mod:`stats`), polygons (:mod:`vectorize`, :mod:`vector_files`),
change between two dates (:mod:`change`), the STAC catalog (:mod:`stac`) and the tables they
write (:mod:`tables`). A layer of its own between the I/O adapters and the Beam jobs, so that
``pipelines.predict`` and ``pipelines.change`` use the same code without importing each other.
No Beam and no TensorFlow here (storage reaches Beam's FileSystems indirectly); everything
reads rasters by windows, so memory is bounded by a window, not by the scene.
"""
