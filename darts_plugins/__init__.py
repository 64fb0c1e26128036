"""The built-in families of darts, each a plugin module registered through the ``darts`` entry-point group.

They are loaded exactly like a third-party plugin: ``setup.py`` lists them under ``entry_points['darts']``.
"""
