"""The package's version, on its own so that modules inside the package can read it without importing the
package's face (``fragscan/__init__.py`` imports the whole pipeline)."""

__version__ = "0.1.0"
