"""The driver: the process on the Ray cluster that trains one attempt of one job.

An API job's attempt is a Ray job running `python -m service.driver --job-dir D --attempt N`
(`__main__.py`); it trains the compiled job the API stored in the job directory at submit
(`run.py`), with its Tune callbacks (`callbacks.py`) and the one use of Tune's private state,
checked against the tested Ray version (`tune_private.py`). Nothing here runs in the API.
"""
