"""The physical simulation: one world (``world.SimWorld``) whose parts meet it only through public methods."""
