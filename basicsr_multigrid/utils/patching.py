"""Replacing attributes of basicsr classes and modules, by name, so tests can undo one replacement and show
what it repairs (`with unpatched('B6_video_validation_on_cpu'): ...`)."""
import contextlib

ORIGINALS = {}  # patch name -> list of (owner, attribute, original value or None if the owner did not define it)


def patch(name, owner, attribute, value):
    ORIGINALS.setdefault(name, []).append((owner, attribute, owner.__dict__.get(attribute)))
    setattr(owner, attribute, value)


@contextlib.contextmanager
def unpatched(name):
    """Temporarily restore the original attributes replaced under `name`."""
    saved = [(owner, attribute, owner.__dict__.get(attribute)) for owner, attribute, _ in ORIGINALS[name]]
    try:
        for owner, attribute, original in ORIGINALS[name]:
            _set_or_delete(owner, attribute, original)
        yield
    finally:
        for owner, attribute, patched in saved:
            _set_or_delete(owner, attribute, patched)


def _set_or_delete(owner, attribute, value):
    if value is None:
        if attribute in owner.__dict__:
            delattr(owner, attribute)
    else:
        setattr(owner, attribute, value)
