"""Running several models under one protocol and tabulating them."""
