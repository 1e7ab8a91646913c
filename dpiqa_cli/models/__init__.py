"""Architectures (teacher, student, their parts), the model registry, checkpoint I/O and the import of the
authors' released weights."""
