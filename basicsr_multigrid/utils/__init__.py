"""Small shared helpers. Kept import-light: nothing here imports basicsr at package import time."""
