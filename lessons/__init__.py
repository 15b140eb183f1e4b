"""Lesson modules: each file is self-contained and can be copied on its own."""
