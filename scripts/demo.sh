#!/usr/bin/env bash
# The main job on sample data the project makes itself: make a photo-like image folder,
# convert it to TFRecords, read it back, print the summary, then the short benchmark (raw
# files, TFRecords, Keras, a hand-written tf.data pipeline) and its plot. Output goes to ./demo.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
.venv/bin/python scripts/demo.py "$@"
