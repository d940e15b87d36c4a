"""Bring-up: the single stack description and the process supervisor behind `depai launch`."""
