"""Export a rollout as a LeRobot dataset, format v3.0, written with pyarrow (and PyAV for cameras).

The layout is LeRobot's (``lerobot/datasets/utils.py`` and ``lerobot_dataset.py``, v0.4.4, the
last release for Python 3.11), without depending on ``lerobot``::

    OUT_DIR/meta/info.json                      codebase_version "v3.0", fps, features, totals, paths
    OUT_DIR/meta/stats.json                     per feature: min max mean std count q01 q10 q50 q90 q99
    OUT_DIR/meta/tasks.parquet                  one task (its text is the index), task_index 0
    OUT_DIR/meta/episodes/chunk-000/file-000.parquet   one row per episode: length, where its frames
                                                lie (data/..., videos/<key>/...), dataset_from_index,
                                                dataset_to_index, stats/<feature>/<stat>, and rollrec/...
                                                (env, start, stop, end, return of the rollout's episode)
    OUT_DIR/data/chunk-000/file-000.parquet     one row per frame, episodes one after another
    OUT_DIR/videos/<camera key>/chunk-000/file-000.mp4

One LeRobot episode per exported (env, episode) of the rollout (`rollrec.exports.selection`).
Features: ``observation.state`` (``obs``), ``action`` (``act``), ``next.reward`` (``rew``),
``next.done`` (``done``), ``next.truncated``, ``next.reward_terms`` (named by the reward terms),
``observation.base_pos``/``base_quat``/``link_pos``/``link_quat`` and ``observation.<extra>`` (each
flattened to one row per frame, named), ``observation.images.<camera>`` (videos), and LeRobot's own
``timestamp`` (``frame_index / fps``, float32), ``frame_index``, ``episode_index``, ``index``,
``task_index``. Values keep the rollout's dtypes. Rows of step t hold what the rollout holds for
step t: the observation the policy saw, the action it took, the reward and done that followed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rollrec.exports.cameras import Camera, read_frames
from rollrec.exports.deps import require
from rollrec.exports.fields import Field, column_names
from rollrec.exports.reading import BlockReader
from rollrec.exports.selection import Episode, Selection
from rollrec.exports.stats import StatsAggregate, as_json, episode_stats, image_stats
from rollrec.exports.video import EpisodeVideos
from rollrec.io.protocol import ReadableRollout

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk directory
DATA_FILE_MB = 100
VIDEO_FILE_MB = 200
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE + ".parquet"
#: rollout member -> LeRobot feature
FEATURE_OF = {"obs": "observation.state", "act": "action", "rew": "next.reward", "done": "next.done",
              "truncated": "next.truncated", "rew_terms": "next.reward_terms"}
_ROW_GROUP_BYTES = 32 << 20
#: Small batches (an episode's rows, one episode's metadata row) are merged by this many: Arrow's
#: cost per batch and per column (memory and time) would otherwise grow with the episode count.
_MERGE_BATCHES = 256


def feature_key(field: Field) -> str:
    """The LeRobot feature name of rollout member ``field``; ValueError for a name LeRobot refuses."""
    if "/" in field.key:
        raise ValueError(f"field {field.key!r}: LeRobot feature names cannot contain '/'")
    return FEATURE_OF.get(field.key, f"observation.{field.key}")


def _feature(r: ReadableRollout, field: Field) -> dict[str, Any]:
    shape = [1] if field.trailing in ((), (1,)) else [field.width]
    names = column_names(r, field) if shape != [1] else None
    return {"dtype": field.dtype.name, "shape": shape, "names": names}


class _ParquetFiles:
    """``data/chunk-*/file-*.parquet`` (or the episodes'): record batches (or rows, `add_row`)
    buffered into row groups, a new file once one holds ``file_bytes``; a unit (an episode) never
    spans two files. What waits to be written is at most a row group's bytes, in at most
    `_MERGE_BATCHES` batches (merged into one beyond), whatever the number of episodes."""

    def __init__(self, pa: Any, pq: Any, root: Path, pattern: str, file_bytes: int):
        self.pa, self.pq, self.root, self.pattern, self.file_bytes = pa, pq, root, pattern, file_bytes
        self.chunk, self.file = 0, -1
        self._writer: Any = None
        self._schema: Any = None
        self._pending: list[Any] = []
        self._pending_bytes = 0
        self._rows: list[dict[str, Any]] = []  # rows not yet a batch
        self._row_bytes = 0.0  # a row's bytes once a batch, as last measured
        self._written = 0

    def begin(self) -> tuple[int, int]:
        """``(chunk, file)`` where the next unit goes."""
        waiting = self._written + self._pending_bytes + len(self._rows) * self._row_bytes
        if self.file < 0 or waiting >= self.file_bytes:
            self.close()
            self.file += 1
            if self.file == CHUNKS_SIZE:
                self.chunk, self.file = self.chunk + 1, 0
        return self.chunk, self.file

    def add_row(self, row: dict[str, Any]) -> None:
        """One row (column name: value), made a batch with the rows around it."""
        self._rows.append(row)
        if len(self._rows) >= _MERGE_BATCHES or not self._row_bytes:
            self._take_rows()

    def _take_rows(self) -> None:
        if self._rows:
            batch = self.pa.RecordBatch.from_pylist(self._rows)
            self._row_bytes = max(batch.nbytes / len(self._rows), 1.0)
            self._rows = []
            self.add(batch)

    def add(self, batch: Any) -> None:
        if self._schema is None:
            self._schema = batch.schema
        elif batch.schema != self._schema:
            batch = self.pa.Table.from_batches([batch]).cast(self._schema).to_batches()[0]
        self._pending.append(batch)
        self._pending_bytes += batch.nbytes
        if self._pending_bytes >= _ROW_GROUP_BYTES:
            self.flush()
        elif len(self._pending) >= _MERGE_BATCHES:
            merged = self.pa.Table.from_batches(self._pending, schema=self._schema).combine_chunks()
            self._pending = merged.to_batches()
            self._pending_bytes = sum(b.nbytes for b in self._pending)

    def flush(self) -> None:
        self._take_rows()
        if not self._pending:
            return
        if self._writer is None:
            path = self.root / self.pattern.format(chunk_index=self.chunk, file_index=self.file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self.pq.ParquetWriter(path, self._schema, compression="snappy")
        table = self.pa.Table.from_batches(self._pending, schema=self._schema)
        self._writer.write_table(table, row_group_size=max(1, table.num_rows))
        self._written += self._pending_bytes
        self._pending, self._pending_bytes = [], 0

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._written = 0


def _column(pa: Any, values: np.ndarray, width: int | None) -> Any:
    """An Arrow column of ``[n]`` scalars (``width`` None) or ``[n, width]`` fixed-size lists."""
    values = np.ascontiguousarray(values)
    if width is None:
        return pa.array(values.reshape(-1))
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), width)


def _tasks_table(pa: Any, task: str) -> Any:
    """``meta/tasks.parquet`` as pandas writes LeRobot's DataFrame (index: the task text, unnamed)."""
    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
             "metadata": None},
            {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode", "numpy_type": "object",
             "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    table = pa.table({"task_index": pa.array([0], pa.int64()), "__index_level_0__": pa.array([task], pa.string())})
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def check_fps(dt: float, fps: float | None) -> int:
    """LeRobot's integer ``fps``: ``fps`` if given, else ``1 / dt``; ValueError when that is no integer."""
    if fps is not None:
        if fps <= 0 or float(fps) != int(fps):
            raise ValueError(f"fps must be a positive integer for a LeRobot dataset, got {fps}")
        return int(fps)
    rate = 1.0 / dt
    if abs(rate - round(rate)) > 1e-6 * rate or round(rate) < 1:
        raise ValueError(f"LeRobot datasets need an integer fps; this rollout steps every {dt:g} s ({rate:.4g} fps): "
                         "pass --fps")
    return round(rate)


def write_lerobot(r: ReadableRollout, root: Path, selection: Selection, fields: Sequence[Field],
                  cams: Sequence[Camera], *, fps: int, task: str, lossless_video: bool = False,
                  advance: Callable[[int], None] = lambda n: None) -> dict[str, Any]:
    """Write the dataset into the (empty) directory ``root``; returns its ``info.json``."""
    pa, pq = require("pyarrow", "lerobot"), require("pyarrow.parquet", "lerobot")
    for cam in cams:
        if not cam.is_rgb:
            raise ValueError(f"camera {cam.name!r} ({cam.dtype} {list(cam.shape)}): a LeRobot v3 video holds RGB "
                             "uint8 frames only; leave it out (--cameras / cameras=)")
    features = {feature_key(f): _feature(r, f) for f in fields}
    video_keys = {cam.name: f"observation.images.{cam.name}" for cam in cams}
    for cam in cams:
        if "/" in cam.name:
            raise ValueError(f"camera {cam.name!r}: LeRobot feature names cannot contain '/'")
        features[video_keys[cam.name]] = {"dtype": "video", "shape": list(cam.shape),
                                          "names": ["height", "width", "channels"]}
    for name in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        features[name] = {"dtype": "float32" if name == "timestamp" else "int64", "shape": [1], "names": None}
    videos = {cam.name: EpisodeVideos(root, lambda c, f, k=video_keys[cam.name]: VIDEO_PATH.format(
                  video_key=k, chunk_index=c, file_index=f), name=cam.name, fps=fps, shape=cam.shape,
                  file_bytes=VIDEO_FILE_MB << 20, chunks_size=CHUNKS_SIZE, lossless=lossless_video)
              for cam in cams}
    data = _ParquetFiles(pa, pq, root, DATA_PATH, DATA_FILE_MB << 20)
    episodes_meta = _ParquetFiles(pa, pq, root, EPISODES_PATH, DATA_FILE_MB << 20)
    totals = {key: StatsAggregate() for key in features if key != "task_index"}
    reader = BlockReader(r, [f.key for f in fields], selection.envs)
    index = 0
    try:
        for ep_index, ep in enumerate(selection.episodes):
            mchunk, mfile = episodes_meta.begin()
            where = {"episode_index": ep_index, "tasks": [task], "dataset_from_index": index,
                     "meta/episodes/chunk_index": mchunk, "meta/episodes/file_index": mfile}
            row = _write_episode(pa, r, reader, ep, where, fields, cams, videos, video_keys, data, totals, fps,
                                 advance)
            index += ep.length
            episodes_meta.add_row(row)
    finally:
        data.close()
        for v in videos.values():
            v.close()
    episodes_meta.close()
    for cam in cams:
        features[video_keys[cam.name]]["info"] = videos[cam.name].info()
    pq.write_table(_tasks_table(pa, task), root / "meta" / "tasks.parquet")
    stats = {k: as_json(agg.result()) for k, agg in totals.items() if agg.count}
    (root / "meta" / "stats.json").write_text(json.dumps(stats, indent=4))
    info = {
        "codebase_version": CODEBASE_VERSION, "robot_type": r.env_name, "total_episodes": len(selection.episodes),
        "total_frames": index, "total_tasks": 1, "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": DATA_FILE_MB,
        "video_files_size_in_mb": VIDEO_FILE_MB, "fps": fps, "splits": {"train": f"0:{len(selection.episodes)}"},
        "data_path": DATA_PATH, "video_path": VIDEO_PATH if cams else None, "features": features,
    }
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    return info


def _write_episode(pa: Any, r: ReadableRollout, reader: BlockReader, ep: Episode, where: dict[str, Any],
                   fields: Sequence[Field], cams: Sequence[Camera], videos: dict[str, EpisodeVideos],
                   video_keys: dict[str, str], data: _ParquetFiles, totals: dict[str, StatsAggregate], fps: int,
                   advance: Callable[[int], None]) -> dict[str, Any]:
    """One episode's rows, frames and stats (in pieces of at most ``reader.max_rows`` rows: an
    episode's stats combine its pieces' like the dataset's combine episodes'); returns its row
    of the episodes metadata, which starts as ``where``."""
    chunk, file = data.begin()
    ep_index, index, n = where["episode_index"], where["dataset_from_index"], ep.length
    ep_stats: dict[str, StatsAggregate] = {key: StatsAggregate() for key in totals}
    for t, rows in reader.chunks(ep):
        m = min(reader.max_rows, ep.row_stop - t)
        frame_index = np.arange(t - ep.row_start, t - ep.row_start + m, dtype=np.int64)
        cols = {}
        for f in fields:
            key = feature_key(f)
            flat = np.asarray(rows[f.key]).reshape(m, -1)
            cols[key] = _column(pa, flat, None if f.trailing in ((), (1,)) else f.width)
            ep_stats[key].add(episode_stats(flat))
        cols["timestamp"] = pa.array((frame_index / fps).astype(np.float32))
        cols["frame_index"] = pa.array(frame_index)
        cols["episode_index"] = pa.array(np.full(m, ep_index, np.int64))
        cols["index"] = pa.array(index + frame_index)
        cols["task_index"] = pa.array(np.zeros(m, np.int64))
        for key in ("timestamp", "frame_index", "episode_index", "index"):
            ep_stats[key].add(episode_stats(cols[key].to_numpy()[:, None]))
        data.add(pa.RecordBatch.from_pydict(cols))
        advance(m)
    row = {**where, "length": n, "data/chunk_index": chunk, "data/file_index": file,
           "dataset_to_index": index + n}
    every = max(1, n // 100)  # frames sampled for an episode's image stats (LeRobot samples too)
    for cam in cams:
        key = video_keys[cam.name]
        v = videos[cam.name]
        vchunk, vfile, from_ts = v.begin_episode()
        for t in range(ep.row_start, ep.row_stop, reader.max_rows):
            frames = read_frames(r, cam, ep.env, (t, min(t + reader.max_rows, ep.row_stop)))
            v.add(frames)
            sampled = frames[(np.arange(t, t + len(frames)) - ep.row_start) % every == 0]
            if len(sampled):
                ep_stats[key].add(image_stats(sampled))
        row.update({f"videos/{key}/chunk_index": vchunk, f"videos/{key}/file_index": vfile,
                    f"videos/{key}/from_timestamp": from_ts, f"videos/{key}/to_timestamp": v.end_episode()})
    for key, agg in ep_stats.items():
        if not agg.count:
            continue
        st = agg.result()
        if key in video_keys.values():
            st["count"] = np.array([n], np.int64)  # frames of the episode, as LeRobot counts them
        totals[key].add(st)
        for name, value in st.items():
            row[f"stats/{key}/{name}"] = np.asarray(value).tolist()
    row.update({"rollrec/env": ep.env, "rollrec/start": ep.start, "rollrec/stop": ep.stop,
                "rollrec/first_row": ep.row_start, "rollrec/end": ep.end, "rollrec/return": ep.ret})
    return row


__all__ = ["CODEBASE_VERSION", "FEATURE_OF", "check_fps", "feature_key", "write_lerobot"]
