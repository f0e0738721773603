"""The opening: scheduling, the pipeline, scoring, events and live rooms."""
