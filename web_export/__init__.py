"""The static site builder: gallery, model pages and the experiments' widgets (issue 4)."""
