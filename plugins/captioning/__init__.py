"""The captioning experiment (being built): image-caption pairs and their tokens so far."""
