"""The reading options every reader (tf.data, TF-free, adapters) takes and checks the same
way: channels and the output size."""

from __future__ import annotations

from ..errors import TFRecordToolsError

__all__ = ["CHANNEL_CHOICES", "normalise_size"]

CHANNEL_CHOICES = (1, 3, 4)


def normalise_size(image_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """``N`` or ``(height, width)`` -> ``(height, width)``; None stays None."""
    if image_size is None:
        return None
    if isinstance(image_size, bool):
        raise TFRecordToolsError(f"image_size must be N or (height, width), got {image_size!r}")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    try:
        height, width = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise TFRecordToolsError(
            f"image_size must be N or (height, width), got {image_size!r}"
        ) from None
    if height < 1 or width < 1:
        raise TFRecordToolsError(f"image_size must be positive, got {image_size}")
    return height, width
