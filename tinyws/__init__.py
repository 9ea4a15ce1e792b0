"""tinyws."""
