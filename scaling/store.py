"""Where a study's results live: a local folder or a cloud URI (``s3://``, ``gs://``, ``hdfs://``),
through ``pyarrow.fs``.

Layout under ``<storage>/<study name>/``:

* ``study.json``: the resolved configuration and the grid;
* ``trials/<id>/metrics.parquet``: one row per (benchmark, setting, query language, candidate
  language, metric), with the trial's axes as columns;
* ``trials/<id>/curve.parquet``: the training curve (step, loss, throughput, held-out loss);
* ``trials/<id>/manifest.json``: configuration, languages, data, parameter counts, versions.

A trial counts as finished when its ``manifest.json`` exists, and the manifest is always written
last. On a local disk a trial is written into a hidden temporary folder and renamed into place as
a whole; on an object store (no directory rename) each file is one atomic PUT and the manifest is
the completion marker. Either way a crash never leaves a trial that readers take as finished, and
``load`` sees exactly the finished trials while a study still runs.
"""

from __future__ import annotations

import io
import json
import posixpath
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

TRIAL_FILES = ("metrics.parquet", "curve.parquet", "manifest.json")
RUNS = "runs"  # training runs (Ray Train checkpoints, plans) under a study's folder


def attempt_name(name: str) -> str:
    """The run folder of one attempt at a run: ``<name>-<8 hex>`` (Ray would reuse an old run's
    checkpoints under a reused name). ``ResultStore.remove_stale_runs`` matches the same shape."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def trial_run_name(trial_id: str) -> str:
    """The run name of a study's trial (its attempts are ``attempt_name`` of it)."""
    return f"trial-{trial_id}"


def is_attempt_of(folder: str, name: str) -> bool:
    prefix, _, suffix = folder.rpartition("-")
    return prefix == name and len(suffix) == 8 and all(c in "0123456789abcdef" for c in suffix)


class ResultFileError(ValueError):
    """A result file that cannot be read (truncated, damaged); the message names it and the fix."""

    def __init__(self, message: str, *, path: str) -> None:
        self.path = path
        super().__init__(message)


class MissingResultFile(ResultFileError, FileNotFoundError):
    """A result file that should be there and is not (a trial folder missing one of its files)."""


class ResultStore:
    """A study's result folder on any pyarrow filesystem."""

    def __init__(self, location: str | Path, filesystem: pafs.FileSystem | None = None):
        location = str(location)
        if filesystem is not None:
            self.fs, self.root = filesystem, location.rstrip("/")
        elif "://" in location:
            try:
                self.fs, self.root = pafs.FileSystem.from_uri(location)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
                raise ValueError(f"storage {location!r}: pyarrow cannot open this URI ({exc}); use a local folder "
                                 "or an s3://, gs:// or hdfs:// URI with credentials configured") from None
            self.root = self.root.rstrip("/")
        else:
            self.fs, self.root = pafs.LocalFileSystem(), str(Path(location).expanduser().resolve())
            location = self.root  # absolute: Ray refuses relative storage paths
        self.location = location

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        """A path on ``self.fs`` (no URI scheme)."""
        return posixpath.join(self.root, *parts)

    def check_writable(self) -> None:
        """Refuse, before any work, a location this process cannot write (a file where a folder
        should be, no permission, no credentials); the message names it."""
        probe = f".write-test-{uuid.uuid4().hex[:8]}"
        try:
            self.write_bytes(probe, b"")
            self.fs.delete_file(self.path(probe))
        except (OSError, pa.ArrowException) as exc:
            raise ValueError(f"storage {self.location} is not writable ({exc}); choose a folder or URI this process "
                             "can write (set storage: or --set storage=...), or fix its permissions") from None

    def uri(self, *parts: str) -> str:
        """A location another ``ResultStore`` opens: an absolute path, or a URI with its scheme."""
        return posixpath.join(self.location.rstrip("/"), *parts)

    def exists(self, *parts: str) -> bool:
        return self.fs.get_file_info(self.path(*parts)).type != pafs.FileType.NotFound

    # ---- writing -------------------------------------------------------------------------

    def write_bytes(self, relpath: str, data: bytes) -> None:
        """One file, atomically: rename on a local disk, a single PUT on an object store."""
        target = self.path(relpath)
        self.fs.create_dir(posixpath.dirname(target), recursive=True)
        if self.is_local:
            tmp = f"{target}.{uuid.uuid4().hex[:8]}.tmp"
            with self.fs.open_output_stream(tmp) as out:
                out.write(data)
            self.fs.move(tmp, target)
        else:
            with self.fs.open_output_stream(target) as out:
                out.write(data)

    def write_json(self, relpath: str, obj) -> None:
        self.write_bytes(relpath, json.dumps(obj, indent=1, default=str).encode())

    def write_trial(self, trial_id: str, metrics: pa.Table, curve: pa.Table, manifest: dict) -> None:
        """All of a trial's files; the manifest, which marks the trial finished, goes last."""
        files = {"metrics.parquet": _parquet_bytes(metrics), "curve.parquet": _parquet_bytes(curve),
                 "manifest.json": json.dumps(manifest, indent=1, default=str).encode()}
        target = self.path("trials", trial_id)
        if self.is_local:
            tmp = self.path("trials", f".{trial_id}-{uuid.uuid4().hex[:8]}")
            self.fs.create_dir(tmp, recursive=True)
            for name in TRIAL_FILES:
                with self.fs.open_output_stream(posixpath.join(tmp, name)) as out:
                    out.write(files[name])
            if self.exists("trials", trial_id):  # an attempt that died before finishing
                self.fs.delete_dir(target)
            self.fs.move(tmp, target)
        else:
            if self.exists("trials", trial_id, "manifest.json"):
                self.fs.delete_file(self.path("trials", trial_id, "manifest.json"))
            for name in TRIAL_FILES:
                self.write_bytes(f"trials/{trial_id}/{name}", files[name])

    def write_record(self, record, types) -> None:
        """A ``scaling.records.TrialRecord``, with the study's axis column ``types``."""
        self.write_trial(record.trial_id, record.metrics_table(types), record.curve_table(), record.manifest())

    def upload_folder(self, local: str | Path, relpath: str) -> None:
        """A local folder (a final model) copied to ``relpath`` in the store."""
        pafs.copy_files(str(local), self.path(relpath), source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=self.fs)

    def remove_stale_runs(self, name: str) -> list[str]:
        """Delete ``runs/<name>-*`` (``attempt_name``): training runs of attempts that never
        recorded results (a failed trial, a killed driver), whose checkpoints a re-run does not reuse."""
        if not self.exists(RUNS):
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self.path(RUNS)))
        stale = [i.path for i in infos if i.type == pafs.FileType.Directory and is_attempt_of(i.base_name, name)]
        for path in stale:
            self.fs.delete_dir(path)
        return stale

    # ---- reading -------------------------------------------------------------------------

    def finished(self) -> list[str]:
        """Trial ids whose manifest exists (sorted)."""
        if not self.exists("trials"):
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self.path("trials"), recursive=False))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory
                      and not i.base_name.startswith(".") and self.exists("trials", i.base_name, "manifest.json"))

    def read_bytes(self, relpath: str) -> bytes:
        with self.fs.open_input_file(self.path(relpath)) as fh:
            return fh.read()

    def _where(self, relpath: str) -> str:
        """How messages name a file: the store's location (with its URI scheme) and the path in it."""
        return f"{self.location.rstrip('/')}/{relpath}"

    def _fix(self, relpath: str) -> str:
        parts = relpath.split("/")
        if len(parts) > 2 and parts[0] == "trials":
            return (f"delete the trial folder {self._where('trials/' + parts[1])} and run the study again with "
                    "--resume, which reruns that trial")
        return "restore the file, or run the study again with --resume, which rewrites it"

    def _missing(self, relpath: str) -> MissingResultFile:
        return MissingResultFile(f"{self._where(relpath)} is missing ({self._fix(relpath)})", path=self._where(relpath))

    def read_json(self, relpath: str):
        try:
            data = self.read_bytes(relpath)
        except OSError:
            if not self.exists(relpath):
                raise self._missing(relpath) from None
            raise
        try:
            return json.loads(data)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise ResultFileError(f"{self._where(relpath)}: not valid JSON, the file is truncated or damaged ({exc}) "
                                  f"({self._fix(relpath)})", path=self._where(relpath)) from None

    def read_table(self, relpath: str) -> pa.Table:
        try:
            return pq.read_table(self.path(relpath), filesystem=self.fs)
        except (OSError, pa.ArrowException, ValueError) as exc:
            if not self.exists(relpath):
                raise self._missing(relpath) from None
            raise ResultFileError(f"{self._where(relpath)}: not a readable Parquet file, the file is truncated or "
                                  f"damaged ({exc}) ({self._fix(relpath)})", path=self._where(relpath)) from None

    def trial_tables(self, name: str, ids: list[str] | None = None) -> pa.Table:
        """One of the per-trial Parquet files of every finished trial (or of ``ids``), concatenated."""
        ids = self.finished() if ids is None else ids
        if not ids:
            raise FileNotFoundError(f"{self.location} has no finished trials (no trials/*/manifest.json)")
        tables = [self.read_table(f"trials/{t}/{name}") for t in ids]
        return pa.concat_tables([t for t in tables if t.num_columns], promote_options="default")

    def manifests(self, ids: list[str] | None = None) -> dict[str, dict]:
        return {t: self.read_json(f"trials/{t}/manifest.json") for t in (self.finished() if ids is None else ids)}


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()
