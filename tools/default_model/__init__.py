"""Data for the bundled default model: the photos it learns from, is chosen on, and is tested on.

manifest.py/manifest.csv list every candidate photo and its split; fetch.py downloads and verifies them;
artefacts.py decides how far each must be downscaled to be free of its own JPEG artefacts; references.py
turns the train and val photos into 512x512 synth references and the val/test photos into the whole
photos the level benchmark (dpiqa_cli.evaluate.levels) distorts.
"""
