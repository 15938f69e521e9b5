"""What a dataset's records are for: ``classification`` (an image and its label),
``detection`` (boxes and classes, the object detection API's keys) or ``segmentation``
(a class mask PNG, DeepLab's key). TensorFlow-free.

Data flow: resolved dataset (``resolve.py``) -> **the manifest's ``task``** (ours: no
record read) | **the first record's keys** (anyone else's: TF's ``create_coco_tf_record.py``,
the detection API's other scripts, DeepLab's) -> ``Dataset.task``; and the one check every
reader makes before reading (:func:`check_task`): a reader asked for one task on records of
another is an error that says which task to pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import TFRecordToolsError
from ..format import detection as det
from ..format.example import LABEL

if TYPE_CHECKING:
    from .resolve import Dataset

__all__ = ["TASKS", "check_task", "task_of", "task_of_features"]

TASKS = ("classification", "detection", "segmentation")
#: The keys a record must have to be read as a task other than classification.
TASK_KEYS = {
    "detection": (det.XMIN, det.CLASS_LABEL),
    "segmentation": (det.SEGMENTATION,),
}
#: What records of each task hold, as messages say it.
HOLDS = {
    "classification": "classification records (an image and its image/class/label)",
    "detection": "detection records (boxes and classes)",
    "segmentation": "segmentation records (class masks)",
}


def task_of_features(features: dict[str, tuple[str, list[Any]]]) -> str:
    """The task of a record by its keys: detection when it has the box keys
    (``image/object/bbox/xmin``, ``image/object/class/label``) and no ``image/class/label``,
    else segmentation when it has ``image/segmentation/class/encoded``, else
    classification."""
    if all(k in features for k in TASK_KEYS["detection"]) and LABEL not in features:
        return "detection"
    if det.SEGMENTATION in features:
        return "segmentation"
    return "classification"


def manifest_task(dataset: Dataset) -> str | None:
    """The task a manifest of ours states (absent: classification, by the format's
    contract); None when the dataset has no manifest. An unknown task is an error naming
    the manifest."""
    if dataset.manifest is None:
        return None
    said = dataset.manifest.data.get("task", "classification")
    if said not in TASKS:
        raise TFRecordToolsError(
            f"{dataset.manifest_file}: task {said!r}, which this version does not read "
            f"(it reads {', '.join(TASKS)}): upgrade tfrecord-tools"
        )
    return said


def task_of(dataset: Dataset) -> str:
    """``dataset``'s task (what ``Dataset.task`` gives): its manifest's, else its first
    record's (:func:`task_of_features`); classification when there is no record."""
    said = manifest_task(dataset)
    if said is not None:
        return said
    first = dataset.first_record
    return "classification" if first is None else task_of_features(first[1])


def check_task(dataset: Dataset, task: str) -> None:
    """Raise :class:`TFRecordToolsError` unless ``dataset``'s records can be read as
    ``task``: classification needs classification records (a detection or segmentation
    dataset says which task to pass); detection needs the box keys, segmentation the class
    mask key (a record may have both, or a label beside its boxes). Every reader calls this
    before reading: ``access.TFRecordDataSource``, ``read.make_dataset``."""
    if task not in TASKS:
        raise TFRecordToolsError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    found = dataset.task
    if task == "classification":
        if found != "classification":
            raise TFRecordToolsError(f"{dataset.shown} holds {HOLDS[found]}: pass task={found!r}")
        return
    if found == task:
        return
    said = manifest_task(dataset)
    first = dataset.first_record if said != "classification" else None
    if said is None and first is None:
        return  # no record at all: nothing to misread
    wanted = TASK_KEYS[task]
    if first is not None and all(k in first[1] for k in wanted):
        return  # e.g. detection records that carry class masks too
    missing = ", ".join(k for k in wanted if first is None or k not in first[1])
    hint = (
        "read them with task='classification' (the default)"
        if found == "classification"
        else f"pass task={found!r}"
    )
    raise TFRecordToolsError(
        f"{dataset.shown} holds {HOLDS[found]}, not {task} records (no {missing}): {hint}"
    )
