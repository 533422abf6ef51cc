"""Is run B better than baseline A? Paired statistics over every episode of thousands of envs.

- `compare` (`rollrec.compare`, ``rollrec compare``): every figure of every run and each run against
  the baseline, as plain data; `report` turns it into text or Markdown (the CLI and the viewer
  print the same strings);
- `episodes`: a rollout's episodes read for the statistics (`read_episodes` -> `RunEpisodes`),
  through `rollrec.io` and its segmentation kernel (`rollrec.io.segments`);
- `pairing`: whether env k of one run faced what env k of the other did (``meta["start_state"]``,
  `rollrec.format.start_state`), and how runs are named;
- `sample`: the completed episodes of a run (`Sample`) and every difference between two
  (`Differences`), on `bootstrap` (the env-cluster bootstrap, vectorised, fixed seed: means, the
  IQM, percentile intervals) and `rates` (Wilson and Newcombe intervals on effective counts).

Numpy only (no scipy). May import `rollrec.io` and the layers below; the viewer and the CLI import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollrec._lazy import lazy_exports

_EXPORTS = {
    "compare": "rollrec.stats.compare",
    "read_episodes": "rollrec.stats.episodes",
    "RunEpisodes": "rollrec.stats.episodes",
    "Sample": "rollrec.stats.sample",
    "Differences": "rollrec.stats.sample",
}

__all__ = ["Differences", "RunEpisodes", "Sample", "compare", "read_episodes"]

__getattr__, __dir__ = lazy_exports("rollrec.stats", _EXPORTS, __all__, globals())

if TYPE_CHECKING:
    from rollrec.stats.compare import compare
    from rollrec.stats.episodes import RunEpisodes, read_episodes
    from rollrec.stats.sample import Differences, Sample
