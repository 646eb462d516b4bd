"""What TensorFlow Serving itself defines, shared by the backends and the built-in model server.

Pure modules only (no TensorFlow, no I/O): the Jupyter server renders TF Serving's config with
them without paying TensorFlow's import.
"""
