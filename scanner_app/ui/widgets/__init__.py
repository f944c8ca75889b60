"""One widget per region of the screen."""
