"""A ranked contact sheet of scored photos: `build_gallery(scores, out)` writes one HTML page."""
from dpiqa_cli.gallery.build import build_gallery, check_gallery_out, summary_line

__all__ = ["build_gallery", "check_gallery_out", "summary_line"]
